"""The page cuts files as the service plans them (``GET /v1/plan``, the core's planner),
not by a rule of its own: with the service's part size set to 6 MiB, a file goes in 6 MiB
parts, and a file of one part goes in one request. The object's ETag says how many parts
storage assembled it from ("-N"), so the count is storage's, not the page's word. A plan
the service could not give is said like any failed upload, and Retry goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.page._support import MiB, press_upload, sign_in
from tests.page.conftest import PageService

pytestmark = [pytest.mark.page]

PART_SIZE = 6 * MiB
FILES = {  # name -> (size, parts storage assembles the object from; 0: sent in one request)
    "four.mp4": (20 * MiB, 4),
    "two.mp4": (12 * MiB, 2),
    "one.mp4": (5 * MiB, 0),
}


@pytest.mark.parametrize("page_service", [{"part_size": PART_SIZE}], indirect=True)
def test_the_page_cuts_files_into_the_parts_the_service_plans(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    bucket = page_service.bucket
    paths = [make_file(tmp_path / name, size, seed=51 + n)
             for n, (name, (size, _)) in enumerate(FILES.items())]
    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens["alice"])
    page.set_input_files(".uppy-Dashboard-input >> nth=0", [str(p) for p in paths])
    page.wait_for_function(f"() => window.streamifyPage.uppy.getFiles().length === {len(paths)}")
    press_upload(page)

    for path in paths:
        key = f"alice/{path.name}"
        page.locator(f"#done-objects li[data-key='{key}']").wait_for(timeout=120_000)
        assert sha256_of_object(bucket, key) == sha256_of_file(path)
        etag = bucket.client.head_object(Bucket=bucket.name, Key=key)["ETag"].strip('"')
        parts = int(etag.partition("-")[2] or 0)
        assert parts == FILES[path.name][1], f"{path.name}: ETag {etag}"
    assert bucket.open_uploads() == []


def test_a_plan_the_service_could_not_give_is_said_and_retry_goes_on(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    bucket = page_service.bucket
    clip = make_file(tmp_path / "clip.mp4", 12 * MiB, seed=61)
    key = f"alice/{clip.name}"
    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens["alice"])
    asked: list[str] = []

    def unavailable(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=503, content_type="application/problem+json", body=json.dumps({
            "type": "about:blank", "title": "Service Unavailable", "status": 503,
            "detail": "the service is restarting"}))

    page.route("**/v1/plan?*", unavailable)
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(clip))
    page.wait_for_function("window.streamifyPage.uppy.getFiles().length === 1")
    press_upload(page)
    page.locator("#problem").wait_for(state="visible", timeout=10_000)
    problem = page.inner_text("#problem")
    assert "(the service is restarting). Press Retry" in problem, problem
    assert asked and asked[0].endswith(f"/v1/plan?size={12 * MiB}")
    assert bucket.open_uploads() == [], "an upload began without a plan"

    page.unroute("**/v1/plan?*")
    page.locator(".uppy-StatusBar-actionBtn--retry").click()
    page.locator(f"#done-objects li[data-key='{key}']").wait_for(timeout=60_000)
    assert sha256_of_object(bucket, key) == sha256_of_file(clip)
    etag = bucket.client.head_object(Bucket=bucket.name, Key=key)["ETag"]
    assert etag.strip('"').endswith("-2"), etag
