"""Two principals on the page: the second never lists or touches the first one's uploads,
whether on another browser or on the same one after the first signed out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_file
from tests.page._support import (
    MiB,
    add_file,
    open_upload_id,
    parts_held,
    press_upload,
    sign_in,
    throttle,
    wait_for,
)
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]


def _requests_of(page: Any) -> list[str]:
    """Every URL ``page`` asks for from now on (API calls and part uploads alike)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def _lists(page: Any) -> str:
    page.evaluate("window.streamifyPage.refresh()")
    return str(page.inner_text("#app"))


def test_a_second_principal_never_lists_or_touches_the_first_ones_uploads(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    service, bucket = page_service, page_service.bucket
    alice = service.new_page(browser)
    sign_in(alice, service.tokens["alice"])
    add_file(alice, make_file(tmp_path / "note.txt", MiB, seed=1))
    press_upload(alice)
    alice.locator("#done-objects li[data-key='alice/note.txt']").wait_for(timeout=30_000)
    # An upload left open: paused once storage holds a part.
    throttle(alice, 2 * MiB)
    add_file(alice, make_file(tmp_path / "diary.mp4", 40 * MiB, seed=2))
    press_upload(alice)
    key = "alice/diary.mp4"
    upload_id = wait_for(lambda: open_upload_id(bucket, key), "alice's upload")
    wait_for(lambda: parts_held(bucket, key, upload_id), "a part of alice's upload")
    alice.evaluate("window.streamifyPage.uppy.pauseAll()")
    alice.locator(f"#open-uploads li[data-upload-id='{upload_id}']").wait_for()
    held = parts_held(bucket, key, upload_id)

    # Bob on another browser.
    bob = service.new_page(browser)
    bob_asked = _requests_of(bob)
    sign_in(bob, service.tokens["bob"])
    add_file(bob, make_file(tmp_path / "bob.mp4", 20 * MiB, seed=3))
    press_upload(bob)
    bob.locator("#done-objects li[data-key='bob/bob.mp4']").wait_for(timeout=60_000)
    shown = _lists(bob)
    assert "bob/bob.mp4" in shown
    assert "alice/" not in shown
    assert bob.locator("#open-uploads li").count() == 0

    # Bob on alice's browser, after she signed out: the browser forgot her files.
    alice.locator("#sign-out").click()
    alice.wait_for_function("() => document.body.dataset.state === 'signed-out'")
    assert "forgot" in alice.inner_text("#problem")
    alice_asked = _requests_of(alice)
    sign_in(alice, service.tokens["bob"])
    shown = _lists(alice)
    assert "alice/" not in shown, shown
    assert "diary.mp4" not in alice.inner_text("#uploader")
    assert alice.locator(".uppy-Dashboard-Item").count() == 0

    for url in bob_asked + alice_asked:
        assert upload_id not in url and "alice%2F" not in url and "alice/" not in url, url
    # Alice's upload is untouched: open, with the same parts.
    assert open_upload_id(bucket, key) == upload_id
    assert parts_held(bucket, key, upload_id) == held
    assert bucket.read("alice/note.txt") == (tmp_path / "note.txt").read_bytes()
