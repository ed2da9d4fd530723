"""A reload in the middle of a 200 MiB upload from the service's own page, on a throttled
network, on a desktop and on a phone-sized screen.

The page at ``/`` is the one shipped in the package. The browser's part bodies reach
radosgw through a wire proxy that counts them per upload and part, so "nothing finished is
sent again" is counted on the wire, not taken from the page's word. The network is
throttled with the DevTools protocol (``Network.emulateNetworkConditions``) to a mobile
uplink while the upload starts, so the reload lands with some parts in storage and most
not; after the reload the same file is chosen again (the browser could not keep 200 MiB
for Golden Retriever) and the rest goes unthrottled, to keep the run short.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.page._support import (
    MiB,
    add_file,
    assert_fits,
    open_upload_id,
    parts_held,
    press_upload,
    screenshot,
    sign_in,
    throttle,
    wait_for,
)
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]

FILE_SIZE = 200 * MiB
PART_SIZE = 8 * MiB  # the service plans a 200 MiB file in these (GET /v1/plan)
MOBILE_UPLINK = 3 * MiB  # bytes/s: a good 4G uplink
PARTS_BEFORE_RELOAD = 2


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_reload_mid_upload_resumes_without_sending_finished_parts_again(
        page_service: PageService, browser: Any, tmp_path: Path, device: str) -> None:
    service, bucket = page_service, page_service.bucket
    video = make_file(tmp_path / f"ride-{device}.mp4", FILE_SIZE, seed=11)
    key = f"alice/{video.name}"
    page = service.new_page(browser, phone=device == "phone")
    sign_in(page, service.tokens["alice"])
    throttle(page, MOBILE_UPLINK)

    add_file(page, video)
    press_upload(page)
    upload_id = wait_for(lambda: open_upload_id(bucket, key), "the multipart upload")
    wait_for(lambda: len(parts_held(bucket, key, upload_id)) >= PARTS_BEFORE_RELOAD,
             f"{PARTS_BEFORE_RELOAD} parts in storage", timeout=90)
    row = page.locator(f"#open-uploads li[data-upload-id='{upload_id}']")
    row.wait_for(timeout=10_000)
    assert key in row.inner_text()
    # The list is drawn again as parts arrive: it shows what storage holds.
    page.wait_for_function(f"""() => Number(document.querySelector(
        "#open-uploads li[data-upload-id='{upload_id}']")?.dataset.heldBytes) >=
        {PARTS_BEFORE_RELOAD * PART_SIZE}""", timeout=30_000)
    screenshot(page, f"page-{device}-uploading.png", tmp_path)
    assert_fits(page)

    page.reload()
    page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready")
    assert page.evaluate("document.body.dataset.state") == "signed-in"
    # The page that sent parts is gone: what storage holds now is what it will ever get
    # from it.
    held = parts_held(bucket, key, upload_id)
    total = math.ceil(FILE_SIZE / PART_SIZE)
    assert PARTS_BEFORE_RELOAD <= len(held) < total
    assert set(held.values()) == {PART_SIZE}
    # Golden Retriever brought the file back (without its bytes); the list says how much
    # of it storage holds.
    page.locator(".uppy-Dashboard-Item").first.wait_for(timeout=10_000)
    row.wait_for(timeout=10_000)
    assert row.get_attribute("data-held-bytes") == str(sum(held.values()))

    throttle(page, None)
    before = service.proxy.counts()
    add_file(page, video)  # the same file, chosen again
    press_upload(page)
    page.locator(f"#done-objects li[data-key='{key}']").wait_for(timeout=180_000)
    sent = service.proxy.counts() - before

    assert {uid for uid, _ in sent.parts} == {upload_id}, "a second upload was started"
    again = sorted(number for _, number in sent.parts if number in held)
    assert again == [], f"parts storage held were sent again: {again}"
    assert sorted(number for _, number in sent.parts) == [
        n for n in range(1, total + 1) if n not in held]
    assert sent.part_bytes == FILE_SIZE - sum(held.values())
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentLength"] == FILE_SIZE
    assert sha256_of_object(bucket, key) == sha256_of_file(video)
    assert bucket.open_uploads() == []
    page.locator("#open-empty").wait_for(timeout=10_000)
    screenshot(page, f"page-{device}-done.png", tmp_path)
    assert_fits(page)
