"""Two paths of the page that the large-file resume test does not take.

- The camera on a phone: on a touch screen the Dashboard offers the phone's own video
  camera (a file input with ``capture``); what the camera hands back uploads like any file.
- A small file across a reload: Golden Retriever keeps files up to 10 MiB in IndexedDB, so
  after a reload mid-upload the file itself comes back (not a "ghost" to choose again) and
  the upload finishes without the person adding it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.page._support import MiB, press_upload, sign_in, throttle
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]

VIDEO_CAMERA = "input[name='camera-video'][capture]"
SMALL = 3 * MiB  # under Golden Retriever's 10 MiB IndexedDB limit, sent in one request
SLOW_UPLINK = 96 * 1024  # bytes/s: the reload lands well before the file is sent


def test_a_phone_offers_its_video_camera_and_what_it_films_uploads(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    service, bucket = page_service, page_service.bucket
    desktop = service.new_page(browser)
    sign_in(desktop, service.tokens["alice"])
    assert desktop.locator(VIDEO_CAMERA).count() == 0, "a desktop has no camera button"

    phone = service.new_page(browser, phone=True)
    sign_in(phone, service.tokens["alice"])
    camera = phone.locator(VIDEO_CAMERA)
    assert camera.count() == 1
    assert camera.get_attribute("accept") == "video/*"
    assert camera.get_attribute("capture") == "environment"  # the camera facing away
    button = phone.get_by_role("tab", name="Record Video")
    assert button.is_visible()
    # What the camera app returns after filming: a file in that input.
    video = make_file(tmp_path / "VID_20261129_0001.mp4", 24 * MiB, seed=31)
    with phone.expect_file_chooser() as chooser:
        button.click()
    assert chooser.value.element.get_attribute("name") == "camera-video"
    chooser.value.set_files(str(video))
    phone.locator(".uppy-Dashboard-Item").first.wait_for(timeout=10_000)
    press_upload(phone)

    key = f"alice/{video.name}"
    phone.locator(f"#done-objects li[data-key='{key}']").wait_for(timeout=120_000)
    assert sha256_of_object(bucket, key) == sha256_of_file(video)
    assert bucket.open_uploads() == []


def _file_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("""() => {
        const [file] = window.streamifyPage.uppy.getFiles()
        return file ? {name: file.name, ghost: Boolean(file.isGhost),
                       restored: Boolean(file.isRestored),
                       blob: file.data instanceof Blob ? file.data.size : null,
                       sent: file.progress.bytesUploaded || 0,
                       count: window.streamifyPage.uppy.getFiles().length} : null
    }""")
    return state


def _blobs_in_indexeddb(page: Any) -> list[int]:
    """Sizes of the file bodies Golden Retriever keeps in the browser's IndexedDB."""
    sizes: list[int] = page.evaluate("""() => new Promise((resolve, reject) => {
        const opened = indexedDB.open('uppy-blobs')
        opened.onerror = () => reject(opened.error)
        opened.onsuccess = () => {
            const db = opened.result
            if (!db.objectStoreNames.contains('files')) { db.close(); resolve([]); return }
            const all = db.transaction(['files'], 'readonly').objectStore('files').getAll()
            all.onsuccess = () => {
                db.close()
                resolve(all.result.map((entry) => entry.data.size))
            }
            all.onerror = () => reject(all.error)
        }
    })""")
    return sizes


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_small_file_comes_back_from_indexeddb_after_a_reload_and_finishes(
        page_service: PageService, browser: Any, tmp_path: Path, device: str) -> None:
    service, bucket = page_service, page_service.bucket
    clip = make_file(tmp_path / f"clip-{device}.mp4", SMALL, seed=41)
    key = f"alice/{clip.name}"
    page = service.new_page(browser, phone=device == "phone")
    sign_in(page, service.tokens["alice"])
    throttle(page, SLOW_UPLINK)
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(clip))
    page.wait_for_function("() => window.streamifyPage.uppy.getFiles().length === 1")
    press_upload(page)
    # Mid-way: some of it sent, most not.
    page.wait_for_function("""() => {
        const [file] = window.streamifyPage.uppy.getFiles()
        return file && file.progress.bytesUploaded > 256 * 1024
    }""", timeout=60_000)
    assert _file_state(page)["sent"] < SMALL // 2
    assert _blobs_in_indexeddb(page) == [SMALL]

    page.reload()
    page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready")
    assert page.evaluate("document.body.dataset.state") == "signed-in"
    page.locator(".uppy-Dashboard-Item").first.wait_for(timeout=10_000)
    restored = _file_state(page)
    assert restored == {"name": clip.name, "ghost": False, "restored": True, "blob": SMALL,
                        "sent": restored["sent"], "count": 1}, restored
    assert page.locator(".uppy-Dashboard-Item.is-ghost").count() == 0
    assert bucket.client.list_objects_v2(Bucket=bucket.name).get("KeyCount", 0) == 0

    throttle(page, None)
    press_upload(page)  # the Dashboard's "Continue": the file is already there
    page.locator(f"#done-objects li[data-key='{key}']").wait_for(timeout=60_000)
    assert sha256_of_object(bucket, key) == sha256_of_file(clip)
    assert _file_state(page)["count"] == 1
