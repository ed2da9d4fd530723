"""The widgets in a real JupyterLab 4 and Notebook 7, in headless Chromium, against Ceph radosgw.

``Uploader``: a 64 MiB file the kernel reads; pause holds the bar, resume finishes; a
kernel restart mid-upload and a re-run of the cell resume without re-sending the parts S3
already holds (bytes per part counted on the wire by a proxy in front of radosgw).

``BrowserUploader``: a 64 MiB file chosen through the page's file input; the page is
reloaded mid-upload, the same file chosen again, and the upload resumes with only the
missing parts (every PUT the page makes is counted); the kernel's memory does not grow by
the file's size, since the bytes go from the browser straight to S3.

Screenshots of both widgets (mid-upload and finished) are written to ``docs/`` (the
README shows them, when ``STREAMIFY_UPDATE_DOCS=1``) and to the test's folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
pytest.importorskip("jupyterlab", reason="notebook tier skipped: JupyterLab is not installed "
                    "(bash scripts/setup.sh server,dev,notebook)")

from streamify import apply_bucket_rules

from tests.conftest import Bucket
from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.notebook._jupyter import (
    FILE_SIZE,
    PART_SIZE,
    PARTS,
    JupyterServer,
    MiB,
    NotebookPage,
    PartPuts,
    browser_cell,
    parts_in_s3,
    screenshot,
    wait_until,
    write_notebook,
)
from tests.wireproxy import WireProxy, part_puts

pytestmark = [pytest.mark.browser, pytest.mark.reals3]



def kernel_cell(key: str, endpoint: str, bucket: Bucket) -> str:
    return ("from streamify_notebook import Uploader\n"
            f"w = Uploader('big.bin', 's3://{bucket.name}/{key}', endpoint_url='{endpoint}',\n"
            "             part_size='8MiB', concurrency=2, bwlimit='12MiB')\n"
            "w")


def test_uploader_pauses_resumes_and_finishes_in_jupyterlab(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(jupyter.root / "big.bin", FILE_SIZE, seed=1)
    name = write_notebook(jupyter.root / "kernel.ipynb",
                          [kernel_cell("kernel/big.bin", real_bucket.endpoint, real_bucket)])
    notebook = NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    widget.locator(".streamify-start").click()
    notebook.wait_for_bytes(widget, 2 * PART_SIZE)
    screenshot(widget, "notebook-uploader-uploading.png", tmp_path)
    widget.locator(".streamify-pause").click()
    assert notebook.wait_for_status(widget, "paused", "completed") == "paused"
    held = int(widget.get_attribute("data-bytes-done"))
    bar = widget.locator(".streamify-fill").evaluate("el => el.style.width")
    in_s3 = parts_in_s3(real_bucket, "kernel/big.bin")
    time.sleep(2)
    assert int(widget.get_attribute("data-bytes-done")) == held < FILE_SIZE
    assert widget.locator(".streamify-fill").evaluate("el => el.style.width") == bar
    assert parts_in_s3(real_bucket, "kernel/big.bin") == in_s3, "parts went on while paused"
    assert "paused at" in widget.locator(".streamify-detail").inner_text()

    widget.locator(".streamify-resume").click()
    notebook.wait_for_status(widget, "completed")
    assert int(widget.get_attribute("data-bytes-done")) == FILE_SIZE
    assert "64.0 MiB of 64.0 MiB (100%)" in widget.locator(".streamify-numbers").inner_text()
    screenshot(widget, "notebook-uploader-finished.png", tmp_path)
    assert sha256_of_object(real_bucket, "kernel/big.bin") == sha256_of_file(source)


def test_uploader_resumes_after_a_kernel_restart_in_jupyterlab(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(jupyter.root / "big.bin", FILE_SIZE, seed=2)
    key = "kernel/restart.bin"
    proxy = WireProxy(real_bucket.endpoint)
    try:
        name = write_notebook(jupyter.root / "restart.ipynb",
                              [kernel_cell(key, proxy.url, real_bucket)])
        notebook = NotebookPage(page, jupyter, name, "lab")
        notebook.open()
        notebook.run_all()
        old_widget = notebook.widget()
        # Parts past the fourth wait in the proxy, so the restart always lands mid-upload
        # however slowly the kernel restarts.
        proxy.hold_requests(match=lambda method, target: (
            part_puts(method, target) and "partNumber=" in target
            and int(target.split("partNumber=")[1].split("&")[0]) > 4))
        old_widget.locator(".streamify-start").click()
        wait_until(page, lambda: len(parts_in_s3(real_bucket, key)) >= 3)
        old_kernel = jupyter.kernel_process(name).pid
        notebook.restart_kernel()
        # The widget of the kernel that went away says so, and offers no button that
        # would do nothing.
        notebook.wait_for_status(old_widget, "disconnected", timeout=30)
        assert "disconnected" in old_widget.locator(".streamify-numbers").inner_text()
        assert "re-run the cell" in old_widget.locator(".streamify-detail").inner_text()
        for button in ("start", "pause", "resume", "cancel"):
            assert old_widget.locator(f".streamify-{button}").is_disabled(), button
        proxy.cut()  # the dead kernel's held parts never reach S3
        proxy.release()
        time.sleep(1)  # parts cut off by the restart never complete
        held = parts_in_s3(real_bucket, key)
        assert 3 <= len(held) < PARTS
        upload_id = real_bucket.open_uploads()[0]["UploadId"]
        before = proxy.counts()

        notebook.wait_for_kernel_idle()
        assert jupyter.kernel_process(name).pid != old_kernel, "the kernel did not restart"
        notebook.run_all()
        widget = notebook.widget()
        # Before any click, the bar shows what S3 holds; Resume sends the rest.
        notebook.wait_for_status(widget, "paused")
        assert int(widget.get_attribute("data-bytes-done")) == sum(held.values())
        widget.locator(".streamify-resume").click()
        notebook.wait_for_status(widget, "completed", "failed")
        assert widget.locator(".streamify-error").inner_text() == ""
        sent = proxy.counts() - before
        assert {uid for uid, _ in sent.parts} == {upload_id}, "the open upload was not resumed"
        numbers = {number for _, number in sent.parts}
        assert not numbers & set(held), f"parts {numbers & set(held)} were sent again"
        assert numbers | set(held) == set(range(1, PARTS + 1))
        assert sent.part_bytes == FILE_SIZE - sum(held.values())
        already = sum(held.values()) / MiB
        assert f"({already:.1f} MiB were already in S3)" in \
            widget.locator(".streamify-detail").inner_text()
        assert sha256_of_object(real_bucket, key) == sha256_of_file(source)
    finally:
        proxy.close()


class KernelMemory:
    """The kernel's resident memory: the most it grew above the start of each phase."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.baseline = 0
        self.growth = 0

    def start_phase(self) -> None:
        self.baseline = self.process.memory_info().rss

    def sample(self) -> bool:
        self.growth = max(self.growth, self.process.memory_info().rss - self.baseline)
        return True


def test_browser_uploader_resumes_after_a_page_reload_in_jupyterlab(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "clip.mov", FILE_SIZE, seed=3)
    key = "browser/clip.mov"
    name = write_notebook(jupyter.root / "browser.ipynb", [browser_cell(real_bucket)])
    notebook = NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    kernel = KernelMemory(jupyter.kernel_process(name))
    puts = PartPuts(page)
    frames: list[int] = []
    page.on("websocket", lambda socket: socket.on(
        "framesent", lambda payload: frames.append(len(payload))))
    widget.locator("input[type=file]").set_input_files(str(source))
    wait_until(page, lambda: len(puts.finished) >= 1)
    kernel.start_phase()  # the kernel has made its S3 client by now
    wait_until(page, lambda: kernel.sample() and int(widget.get_attribute("data-bytes-done"))
               >= 2 * PART_SIZE)
    screenshot(widget, "notebook-browser-uploading.png", tmp_path)
    wait_until(page, lambda: kernel.sample() and len(set(puts.finished)) >= 3)
    assert widget.get_attribute("data-status") == "uploading"
    page.reload()
    before_reload = set(puts.finished)
    started_before = len(puts.started)

    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    # Before any file is chosen, the widget says what S3 holds and which file resumes it.
    wait_until(page, lambda: "clip.mov" in widget.locator(".streamify-detail").inner_text(),
               timeout=30)
    hint = widget.locator(".streamify-detail").inner_text()
    assert "choose clip.mov" in hint and "MiB in S3" in hint, hint
    widget.locator("input[type=file]").set_input_files(str(source))
    wait_until(page, lambda: len(puts.finished) > len(before_reload))
    kernel.start_phase()  # the re-run cell made a new widget and S3 client
    wait_until(page, lambda: kernel.sample() and widget.get_attribute("data-status")
               in ("completed", "failed"))
    assert widget.locator(".streamify-error").inner_text() == ""
    resent = puts.started[started_before:]
    assert not set(resent) & before_reload, f"parts {set(resent) & before_reload} sent again"
    assert before_reload | set(resent) == set(range(1, PARTS + 1))
    assert len(resent) <= PARTS - len(before_reload) + 2  # parts cut by the reload may repeat
    assert int(widget.get_attribute("data-bytes-done")) == FILE_SIZE
    summary = r"(\d+) parts sent from this page, (\d+) were already in S3"
    # The status changes first; the summary line follows with the next update.
    wait_until(page, lambda: re.search(
        summary, widget.locator(".streamify-detail").inner_text()), timeout=30)
    detail = widget.locator(".streamify-detail").inner_text()
    counts = re.search(summary, detail)
    assert counts, detail
    sent, resumed = int(counts[1]), int(counts[2])
    assert sent + resumed == PARTS and resumed >= len(before_reload)
    assert sent == len(set(resent))
    screenshot(widget, "notebook-browser-finished.png", tmp_path)
    assert sha256_of_object(real_bucket, key) == sha256_of_file(source)
    assert kernel.growth < PART_SIZE, f"kernel grew by {kernel.growth / MiB:.0f} MiB"
    assert frames and max(frames) < 64 * 1024, "file bytes went over the kernel's websocket"
    assert sum(frames) < MiB
    assert all(puts.md5_headers), "a part went without Content-MD5"
    assert real_bucket.open_uploads() == []
    assert re.search(r"64\.0 MiB of 64\.0 MiB", widget.locator(".streamify-numbers").inner_text())


def test_both_widgets_work_in_notebook_7(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    make_file(jupyter.root / "big.bin", 16 * MiB, seed=4)
    source = make_file(tmp_path / "small.mov", 20 * MiB, seed=5)
    name = write_notebook(jupyter.root / "nb7.ipynb", [
        kernel_cell("nb7/big.bin", real_bucket.endpoint, real_bucket).replace(
            "bwlimit='12MiB'", "bwlimit=None"),
        browser_cell(real_bucket, bwlimit=None),
        "from streamify_notebook import upload\n"
        f"r = upload('big.bin', 's3://{real_bucket.name}/nb7/one-liner.bin',\n"
        f"           endpoint_url='{real_bucket.endpoint}')\n"
        "print('result:', r.status, r.size)",
    ])
    notebook = NotebookPage(page, jupyter, name, "notebook")
    notebook.open()
    notebook.run_all()
    kernel_widget, browser_widget = notebook.widget(0), notebook.widget(1)
    kernel_widget.locator(".streamify-start").click()
    browser_widget.locator("input[type=file]").set_input_files(str(source))
    assert notebook.wait_for_status(kernel_widget, "completed", "failed") == "completed"
    assert notebook.wait_for_status(browser_widget, "completed", "failed") == "completed"
    assert real_bucket.read("nb7/big.bin") == (jupyter.root / "big.bin").read_bytes()
    assert sha256_of_object(real_bucket, "browser/small.mov") == sha256_of_file(source)
    # The one-liner drew its own bar and returned the result.
    page.get_by_text(f"result: completed {16 * MiB}").wait_for(timeout=60_000)
    assert notebook.wait_for_status(notebook.widget(2), "completed") == "completed"
    assert real_bucket.read("nb7/one-liner.bin") == (jupyter.root / "big.bin").read_bytes()


CONTRAST = """(root) => {
    const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
    const background = (el) => {
        for (; el; el = el.parentElement) {
            const [r, g, b, a] = rgb(getComputedStyle(el).backgroundColor);
            if (a === undefined || a > 0) return [r, g, b];
        }
        return [255, 255, 255];
    };
    const luminance = ([r, g, b]) => {
        const lin = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const selector = '.streamify-numbers, .streamify-detail, .streamify-error, label > span, '
        + 'input[type=text], button:not(:disabled)';
    return [...root.querySelectorAll(selector)].filter((el) => el.textContent || el.value)
        .map((el) => {
            const [l1, l2] = [luminance(rgb(getComputedStyle(el).color)),
                              luminance(background(el))].sort((a, b) => b - a);
            return [el.className || el.tagName, (l1 + 0.05) / (l2 + 0.05)];
        });
}"""


def test_a_dark_theme_keeps_the_widgets_readable(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    make_file(jupyter.root / "big.bin", 8 * MiB, seed=6)
    name = write_notebook(jupyter.root / "dark.ipynb", [
        kernel_cell("dark/big.bin", real_bucket.endpoint, real_bucket),
        "w.start(); w.wait(60); print(w.status)",
        "from streamify_notebook import BrowserUploader\n"
        "BrowserUploader('s3://no-such-bucket-here/')"])
    source = make_file(tmp_path / "clip.mov", MiB, seed=6)
    notebook = NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    page.evaluate("() => window.jupyterapp.commands.execute("
                  "'apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
    notebook.run_all()
    widget, failing = notebook.widget(0), notebook.widget(1)
    failing.locator("input[type=file]").set_input_files(str(source))
    notebook.wait_for_status(widget, "completed")
    notebook.wait_for_status(failing, "failed")  # an error message shows too
    for each in (widget, failing):
        ratios = each.evaluate(CONTRAST)
        assert len(ratios) >= 5, ratios
        for what, ratio in ratios:
            assert ratio >= 4.5, f"{what} has a contrast of {ratio:.1f} on the dark theme"
    screenshot(widget, "notebook-uploader-dark.png", tmp_path)


def test_browser_uploader_signs_again_when_a_url_expired(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "late.mov", 15 * MiB, seed=7)
    name = write_notebook(jupyter.root / "expiry.ipynb", [browser_cell(real_bucket, None).replace(
        "concurrency=2", "concurrency=1, url_expiry=10").replace("'8MiB'", "'5MiB'")])
    held_back: set[int] = set()

    def hold_first_attempt(route: Any) -> None:
        # Part 2's first URL only: a fresh URL is given all of its 10 s, which a loaded
        # machine may need between signing and storage.
        number = PartPuts._part(route.request)
        if number == 2 and number not in held_back:
            held_back.add(number)
            time.sleep(11.5)  # the URL, valid for 10 s, expires on the way
        route.continue_()

    page.route("**/browser/late.mov?*", hold_first_attempt)
    puts = PartPuts(page)
    notebook = NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    widget.locator("input[type=file]").set_input_files(str(source))
    assert notebook.wait_for_status(widget, "completed", "failed") == "completed", \
        widget.locator(".streamify-error").inner_text()
    assert held_back == {2}
    # radosgw answers the expired URL with a 403 that carries no CORS headers, so the page
    # sees a failed request; it signs the part again and the fresh URL goes through.
    assert puts.started == [1, 2, 2, 3] and puts.finished == [1, 2, 3]
    assert puts.urls[1] != puts.urls[2], "the URL was not re-signed"
    assert sha256_of_object(real_bucket, "browser/late.mov") == sha256_of_file(source)


def test_browser_uploader_explains_a_missing_cors_rule(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    apply_bucket_rules(real_bucket.client, real_bucket.name,
                       allowed_origins=["https://elsewhere.example"])
    source = make_file(tmp_path / "blocked.mov", 6 * MiB, seed=8)
    name = write_notebook(jupyter.root / "cors.ipynb", [
        browser_cell(real_bucket, None).replace("concurrency=2", "backoff_base=0.01")])
    notebook = NotebookPage(page, jupyter, name, "lab")
    notebook.open()
    notebook.run_all()
    widget = notebook.widget()
    widget.locator("input[type=file]").set_input_files(str(source))
    assert notebook.wait_for_status(widget, "completed", "failed") == "failed"
    error = widget.locator(".streamify-error").inner_text()
    assert "CORS rule does not allow this page's origin" in error, error
    assert f"streamify setup-bucket s3://{real_bucket.name} --cors-origin {jupyter.url}" in error
    screenshot(widget, "notebook-browser-cors.png", tmp_path)


def test_browser_uploader_through_the_api_service(
        jupyter: JupyterServer, page: Any, real_bucket: Bucket, tmp_path: Path) -> None:
    """The kernel holds only an API key: the service signs, radosgw takes the parts."""
    from tests.server.conftest import PREFIXES, TOKENS, running_api

    source = make_file(tmp_path / "via-api.mov", 20 * MiB, seed=10)
    with running_api(real_bucket) as api:
        name = write_notebook(jupyter.root / "api.ipynb", [
            "from streamify import HttpControlPlane\n"
            "from streamify_notebook import BrowserUploader\n"
            f"BrowserUploader('s3://{real_bucket.name}/{PREFIXES['alice']}',\n"
            f"                control=HttpControlPlane('{api.url}', token='{TOKENS['alice']}'))"])
        notebook = NotebookPage(page, jupyter, name, "lab")
        notebook.open()
        notebook.run_all()
        widget = notebook.widget()
        widget.locator("input[type=file]").set_input_files(str(source))
        assert notebook.wait_for_status(widget, "completed", "failed") == "completed", \
            widget.locator(".streamify-error").inner_text()
    key = PREFIXES["alice"] + "via-api.mov"
    assert sha256_of_object(real_bucket, key) == sha256_of_file(source)
