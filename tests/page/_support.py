"""What the page tests do to the page and ask of storage."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.conftest import Bucket

MiB = 1024 * 1024
DOCS = Path(__file__).resolve().parents[2] / "docs"


def sign_in(page: Any, token: str) -> None:
    """Type the key and press Enter, as a keyboard user does."""
    page.wait_for_function("() => document.body.dataset.state === 'signed-out'", timeout=10_000)
    page.focus("#api-key")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.dataset.state === 'signed-in'", timeout=10_000)


def throttle(page: Any, upload_bytes_per_s: float | None, *, offline: bool = False) -> Any:
    """Emulate the network through the DevTools protocol (``None``: no limit)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    rate = -1 if upload_bytes_per_s is None else upload_bytes_per_s
    cdp.send("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0 if rate == -1 else 60,
        "downloadThroughput": -1 if rate == -1 else 4 * rate, "uploadThroughput": rate})
    return cdp


def add_file(page: Any, path: Path) -> None:
    """Choose ``path`` in the Dashboard's file picker (behind "Add more" once the
    Dashboard lists files)."""
    if page.locator(".uppy-Dashboard-input").count() == 0:
        page.locator(".uppy-DashboardContent-addMore").click()
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(path))


def press_upload(page: Any) -> None:
    button = page.locator(".uppy-StatusBar-actionBtn--upload")
    button.wait_for(state="visible", timeout=10_000)
    button.click()


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def open_upload_id(bucket: Bucket, key: str) -> str | None:
    for upload in bucket.open_uploads():
        if upload["Key"] == key:
            return str(upload["UploadId"])
    return None


def parts_held(bucket: Bucket, key: str, upload_id: str) -> dict[int, int]:
    """Part number -> size of what storage holds for the upload (asked of radosgw)."""
    listed = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload_id)
    return {int(p["PartNumber"]): int(p["Size"]) for p in listed.get("Parts", [])}


def assert_fits(page: Any) -> None:
    """No sideways scrolling, and the page's own text (around the Dashboard, whose sizes
    are Uppy's) at a readable size."""
    layout = page.evaluate("""() => {
        const root = document.documentElement
        const sizes = [...document.querySelectorAll('main p, .rows li, label, button')]
            .filter((e) => e.offsetParent !== null && !e.closest('.uppy-Root'))
            .map((e) => parseFloat(getComputedStyle(e).fontSize))
        return {overflow: root.scrollWidth - root.clientWidth, smallest: Math.min(...sizes)}
    }""")
    assert layout["overflow"] <= 0, f"the page is {layout['overflow']} px too wide"
    assert layout["smallest"] >= 14, f"text of {layout['smallest']} px is too small to read"


def screenshot(page: Any, name: str, tmp_path: Path) -> None:
    """Keep a screenshot as a test artifact; with ``STREAMIFY_UPDATE_DOCS=1`` also as the
    README's picture in ``docs/``."""
    image = page.screenshot(full_page=True)
    (tmp_path / name).write_bytes(image)
    if os.environ.get("STREAMIFY_UPDATE_DOCS") == "1":
        (DOCS / name).write_bytes(image)
