"""A real Jupyter server (JupyterLab 4 and Notebook 7) on loopback, driven by headless Chromium.

``JupyterServer`` runs ``jupyter lab`` in its own process with a token, a throwaway root
folder and the real S3 server's credentials in the kernel's environment. ``NotebookPage``
opens a notebook in either front end and runs its cells through the application's own
commands (``exposeAppInBrowser``), which do not depend on focus or keyboard timing. The
rest is what the tests share: a ``BrowserUploader`` cell, the page's part PUTs, waiting,
the parts S3 holds, screenshots.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil  # type: ignore[import-untyped]

from tests.conftest import Bucket, free_port

__all__ = [
    "DOCS",
    "FILE_SIZE",
    "PARTS",
    "PART_SIZE",
    "JupyterServer",
    "MiB",
    "NotebookPage",
    "PartPuts",
    "browser_cell",
    "parts_in_s3",
    "screenshot",
    "wait_until",
    "write_notebook",
]

MiB = 1024 * 1024
FILE_SIZE = 64 * MiB
PART_SIZE = 8 * MiB
PARTS = FILE_SIZE // PART_SIZE
DOCS = Path(__file__).parents[2] / "docs"


def write_notebook(path: Path, cells: Sequence[str]) -> str:
    """Write a notebook of code ``cells``; returns its name relative to the root."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
                   "metadata": {}, "outputs": [], "source": source}
                  for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path.name


@dataclass
class JupyterServer:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, root: Path, env: dict[str, str], log: Path) -> Iterator[JupyterServer]:
        port = free_port()
        token = secrets.token_hex(16)
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True", "--ServerApp.allow_root=True",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class="
            "jupyterlab.NeverCheckForUpdate",
        ]
        jupyter_dirs = root.parent / "jupyter-dirs"
        full_env = {**os.environ, **env,
                    "JUPYTER_RUNTIME_DIR": str(jupyter_dirs / "runtime"),
                    "JUPYTER_CONFIG_DIR": str(jupyter_dirs / "config"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(jupyter_dirs / "workspaces"),
                    "IPYTHONDIR": str(jupyter_dirs / "ipython")}
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=full_env, stdout=out,
                                       stderr=subprocess.STDOUT)
        server = cls(f"http://127.0.0.1:{port}", token, root, process)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if server.api("GET", "/api/status").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start; see {log}:\n"
                                       f"{log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30,
                             headers={"Authorization": f"token {self.token}"}, **kwargs)

    def kernel_id(self, notebook: str) -> str:
        for session in self.api("GET", "/api/sessions").json():
            if session["path"] == notebook:
                kernel_id: str = session["kernel"]["id"]
                return kernel_id
        raise AssertionError(f"no running kernel for {notebook}")

    def kernel_process(self, notebook: str) -> psutil.Process:
        """The kernel's OS process (a child of the server, started with its connection file)."""
        kernel_id = self.kernel_id(notebook)
        for child in psutil.Process(self.process.pid).children(recursive=True):
            if any(kernel_id in part for part in child.cmdline()):
                return child
        raise AssertionError(f"kernel process {kernel_id} not found")


class NotebookPage:
    """A notebook open in JupyterLab (``/lab/tree/...``) or Notebook 7 (``/notebooks/...``)."""

    def __init__(self, page: Any, server: JupyterServer, notebook: str, front_end: str) -> None:
        self.page, self.server, self.notebook, self.front_end = page, server, notebook, front_end

    def open(self) -> None:
        path = (f"/lab/tree/{self.notebook}?reset&token={self.server.token}"
                if self.front_end == "lab" else
                f"/notebooks/{self.notebook}?token={self.server.token}")
        self.page.goto(self.server.url + path)
        self.page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.wait_for_kernel_idle()

    def wait_for_kernel_idle(self, timeout: float = 60.0) -> None:
        self.page.wait_for_function(
            """() => {
                const panel = window.jupyterapp.shell.currentWidget;
                const kernel = panel && panel.sessionContext && panel.sessionContext.session
                    && panel.sessionContext.session.kernel;
                return kernel && kernel.status === 'idle';
            }""", timeout=timeout * 1000)

    def restart_kernel(self) -> None:
        """Restart the kernel as the Kernel menu does after its confirmation dialog."""
        self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")

    def run_all(self, *, wait: bool = True) -> None:
        """Run every cell, as the Run menu does; ``wait``: until the last cell has run
        (the command's promise), else return once the cells are queued."""
        command = "window.jupyterapp.commands.execute('notebook:run-all-cells')"
        self.page.evaluate(f"() => {command}" if wait else f"() => {{ {command}; }}")

    @staticmethod
    def _running(index: int) -> str:
        return (f"() => window.jupyterapp.shell.currentWidget.content.widgets[{index}].model"
                ".executionState === 'running'")

    def cell_running(self, index: int) -> bool:
        """Whether cell ``index`` runs now (its prompt shows ``[*]``). The kernel's status
        cannot tell: the subshell that answers a widget says busy and idle too."""
        running: bool = self.page.evaluate(self._running(index))
        return running

    def wait_for_cell_running(self, index: int, timeout: float = 30.0) -> None:
        self.page.wait_for_function(self._running(index), timeout=timeout * 1000)

    def interrupt_kernel(self) -> None:
        """Interrupt the running cell, as the Kernel menu's Interrupt does."""
        self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
            ".interrupt()")

    def widget(self, index: int = 0) -> Any:
        locator = self.page.locator(".streamify-upload").nth(index)
        locator.wait_for(timeout=60_000)
        return locator

    def wait_for_status(self, widget: Any, *statuses: str, timeout: float = 120.0) -> str:
        wanted = json.dumps(list(statuses))
        widget.element_handle().wait_for_element_state("visible")
        self.page.wait_for_function(
            f"(el) => {wanted}.includes(el.dataset.status)", arg=widget.element_handle(),
            timeout=timeout * 1000)
        status: str = widget.get_attribute("data-status")
        return status

    def wait_for_bytes(self, widget: Any, at_least: int, timeout: float = 120.0) -> int:
        self.page.wait_for_function(
            f"(el) => Number(el.dataset.bytesDone) >= {at_least}", arg=widget.element_handle(),
            timeout=timeout * 1000)
        return int(widget.get_attribute("data-bytes-done"))


def screenshot(widget: Any, name: str, tmp_path: Path) -> None:
    """Keep a screenshot as a test artifact; with ``STREAMIFY_UPDATE_DOCS=1`` also as the
    README's picture in ``docs/``."""
    time.sleep(0.4)  # let the bar's width transition end
    image = widget.screenshot()
    (tmp_path / name).write_bytes(image)
    if os.environ.get("STREAMIFY_UPDATE_DOCS") == "1":
        (DOCS / name).write_bytes(image)


def parts_in_s3(bucket: Bucket, key: str) -> dict[int, int]:
    """Part number -> size of the one open upload to ``key`` (empty when there is none)."""
    uploads = [u for u in bucket.open_uploads() if u["Key"] == key]
    if not uploads:
        return {}
    listed = bucket.client.list_parts(Bucket=bucket.name, Key=key,
                                      UploadId=uploads[0]["UploadId"])
    return {p["PartNumber"]: p["Size"] for p in listed.get("Parts", [])}


def wait_until(page: Any, condition: Any, timeout: float = 120.0) -> None:
    """Poll ``condition``; waiting through the page lets Playwright deliver its events."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)


def browser_cell(bucket: Bucket, bwlimit: str | None = "'6MiB'") -> str:
    return ("from streamify_notebook import BrowserUploader\n"
            f"b = BrowserUploader('s3://{bucket.name}/browser/',\n"
            f"                    endpoint_url='{bucket.endpoint}', part_size='8MiB',\n"
            f"                    concurrency=2, bwlimit={bwlimit})\n"
            "b")


class PartPuts:
    """Every part PUT the page makes, and which of them S3 answered with 200."""

    def __init__(self, page: Any) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self.statuses: list[int] = []
        self.md5_headers: list[str | None] = []
        self.urls: list[str] = []
        page.on("request", self._request)
        page.on("requestfinished", self._finished)

    @staticmethod
    def _part(request: Any) -> int | None:
        if request.method != "PUT":
            return None
        query = parse_qs(urlsplit(request.url).query)
        return int(query["partNumber"][0]) if "partNumber" in query else None

    def _request(self, request: Any) -> None:
        number = self._part(request)
        if number is not None:
            self.started.append(number)
            self.md5_headers.append(request.headers.get("content-md5"))
            self.urls.append(request.url)

    def _finished(self, request: Any) -> None:
        number = self._part(request)
        response = request.response()
        if number is not None and response is not None:
            self.statuses.append(response.status)
            if response.status == 200:
                self.finished.append(number)
