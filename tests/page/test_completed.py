"""The page's "Recently completed" list comes from the service's object listing: another
browser of the same principal shows what the first one uploaded, and so does a program's
upload; another principal's page shows none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_file
from tests.page._support import MiB, add_file, press_upload, sign_in
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]


def _completed(page: Any) -> list[str]:
    page.evaluate("window.streamifyPage.refresh()")
    keys: list[str] = page.eval_on_selector_all(
        "#done-objects li", "items => items.map((item) => item.dataset.key)")
    return keys


def test_another_browser_of_the_same_principal_lists_what_the_first_completed(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    service, bucket = page_service, page_service.bucket
    laptop = service.new_page(browser)
    sign_in(laptop, service.tokens["alice"])
    assert laptop.is_visible("#done-empty")
    add_file(laptop, make_file(tmp_path / "first.mp4", 2 * MiB, seed=21))
    press_upload(laptop)
    laptop.locator("#done-objects li[data-key='alice/first.mp4']").wait_for(timeout=60_000)
    # A program of the same principal stores another object, later.
    bucket.client.put_object(Bucket=bucket.name, Key="alice/from-a-script.bin", Body=b"s")

    phone = service.new_page(browser, phone=True)
    sign_in(phone, service.tokens["alice"])
    # The phone's browser never saw either upload: the list is the service's.
    assert phone.evaluate("Object.keys(window.localStorage)"
                          ".filter((k) => !k.startsWith('uppyState:'))") == []
    phone.locator("#done-objects li[data-key='alice/first.mp4']").wait_for(timeout=10_000)
    assert _completed(phone) == ["alice/from-a-script.bin", "alice/first.mp4"]
    row = phone.inner_text("#done-objects li[data-key='alice/first.mp4']")
    assert "2.0 MiB" in row and "completed" in row
    assert phone.is_hidden("#done-empty")

    bob = service.new_page(browser)
    sign_in(bob, service.tokens["bob"])
    assert _completed(bob) == []
    assert bob.is_visible("#done-empty")
