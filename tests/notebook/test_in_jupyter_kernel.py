"""What the widgets say about their kernel, in a real JupyterLab 4 in headless Chromium,
against Ceph radosgw: a kernel restart stops a browser upload and says how to resume (the
re-run cell names the file, and choosing it sends only what S3 lacks); errors name the
widgets' own arguments and the API service; a browser upload goes on while another cell
runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
pytest.importorskip("jupyterlab", reason="notebook tier skipped: JupyterLab is not installed "
                    "(bash scripts/setup.sh server,dev,notebook)")

from tests.conftest import Bucket, free_port
from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.notebook import _jupyter as lab
from tests.notebook._jupyter import JupyterServer

pytestmark = [pytest.mark.browser, pytest.mark.reals3]


def test_a_kernel_restart_stops_a_browser_upload_and_the_rerun_cell_resumes_it(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "clip.mov", lab.FILE_SIZE, seed=11)
    name = lab.write_notebook(jupyter.root / "restart-browser.ipynb",
                              [lab.browser_cell(real_bucket)])
    notebook = lab.NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    puts = lab.PartPuts(page)
    widget.locator("input[type=file]").set_input_files(str(source))
    lab.wait_until(page, lambda: len(set(puts.finished)) >= 2)
    notebook.restart_kernel()
    notebook.wait_for_status(widget, "disconnected", timeout=60)
    error = widget.locator(".streamify-error").inner_text()
    assert "Cannot send" not in error and "unexpected" not in error, error
    assert "kernel restarted" in error and "re-run the cell" in error, error
    assert "choose clip.mov again" in error, error
    for button in ("start", "pause", "resume", "cancel"):
        assert widget.locator(f".streamify-{button}").is_disabled(), button
    assert widget.locator("input[type=file]").is_disabled()
    lab.screenshot(widget, "notebook-browser-kernel-restarted.png", tmp_path)

    notebook.wait_for_kernel_idle()
    time.sleep(1)  # parts cut off by the restart never complete
    held = lab.parts_in_s3(real_bucket, "browser/clip.mov")
    started_before = len(puts.started)
    notebook.run_all()
    widget = notebook.widget()
    lab.wait_until(page, lambda: "clip.mov" in widget.locator(".streamify-detail").inner_text(),
               timeout=30)
    assert "choose clip.mov" in widget.locator(".streamify-detail").inner_text()
    widget.locator("input[type=file]").set_input_files(str(source))
    assert notebook.wait_for_status(widget, "completed", "failed") == "completed", \
        widget.locator(".streamify-error").inner_text()
    resent = set(puts.started[started_before:])
    assert not resent & set(held), f"parts {resent & set(held)} were sent again"
    assert sha256_of_object(real_bucket, "browser/clip.mov") == sha256_of_file(source)


def test_errors_name_the_widget_arguments_and_the_api_service(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    source = make_file(tmp_path / "small.mov", lab.MiB, seed=12)
    name = lab.write_notebook(jupyter.root / "errors.ipynb", [
        "from streamify_notebook import BrowserUploader\n"
        f"BrowserUploader('s3://{real_bucket.name}/x/', api_url='{nowhere}', token='t')",
        "from streamify_notebook import BrowserUploader\n"
        f"BrowserUploader('s3://{real_bucket.name}/x/', endpoint_url='{nowhere}')"])
    notebook = lab.NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    service, storage = notebook.widget(0), notebook.widget(1)
    for widget in (service, storage):
        widget.locator("input[type=file]").set_input_files(str(source))
        notebook.wait_for_status(widget, "failed")
    said = service.locator(".streamify-error").inner_text()
    assert said.startswith("The API service could not be reached"), said
    assert "api_url" in said and "--api" not in said, said
    said = storage.locator(".streamify-error").inner_text()
    assert said.startswith("Storage could not be reached"), said
    assert "endpoint_url" in said and "--endpoint-url" not in said, said
    assert "command" not in said, said


def test_a_browser_upload_goes_on_while_another_cell_runs(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "busy.mov", 20 * lab.MiB, seed=13)
    name = lab.write_notebook(jupyter.root / "busy.ipynb", [
        lab.browser_cell(real_bucket, None), "import time\ntime.sleep(120)\nprint('slept')"])
    notebook = lab.NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all(wait=False)  # the second cell sleeps for two minutes
    widget = notebook.widget()
    notebook.wait_for_cell_running(1)  # the second cell sleeps
    widget.locator("input[type=file]").set_input_files(str(source))
    assert notebook.wait_for_status(widget, "completed", "failed", timeout=60) == "completed", \
        widget.locator(".streamify-error").inner_text()
    assert notebook.cell_running(1), "the upload waited for the other cell to end"
    assert not any("slept" in text for text in page.locator(".jp-OutputArea").all_inner_texts())
    notebook.interrupt_kernel()
    assert sha256_of_object(real_bucket, "browser/busy.mov") == sha256_of_file(source)
