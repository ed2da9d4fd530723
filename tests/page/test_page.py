"""The page's other promises: a one-time sign-in link from ``streamify serve --local``,
keyboard use, and failures told in plain words (a wrong key, an expired session, a file
over the size limit, the network down), each followed by what the person does next."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM
from tests.helpers import make_file
from tests.page._support import (
    MiB,
    add_file,
    assert_fits,
    open_upload_id,
    press_upload,
    sign_in,
    throttle,
)
from tests.page.conftest import LIMIT, SIZE_LIMITED, PageService

pytestmark = [pytest.mark.page]

PROBLEM_TIMEOUT_MS = 30_000
ONLINE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


def _problem(page: Any) -> str:
    page.locator("#problem").wait_for(state="visible", timeout=PROBLEM_TIMEOUT_MS)
    return str(page.inner_text("#problem"))


def test_a_wrong_key_is_refused_in_plain_words_and_the_page_works_by_keyboard(
        page_service: PageService, browser: Any) -> None:
    page = page_service.new_page(browser, phone=True)
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.type("stfy_not-a-key")
    page.keyboard.press("Enter")
    assert "API key was not accepted" in _problem(page)
    assert_fits(page)
    page.fill("#api-key", "")
    sign_in(page, page_service.tokens["alice"])
    assert page.is_hidden("#problem")
    reached = []
    for _ in range(25):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => {
            const e = document.activeElement
            return (e.getAttribute('aria-label') || e.textContent || '').trim()
        }"""))
    assert "Sign out" in reached
    assert any("browse" in name.lower() for name in reached), reached
    assert "Refresh" in reached
    assert_fits(page)


def test_an_expired_session_asks_to_sign_in_again_and_the_upload_then_goes_on(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    from streamify.server._auth import SESSION_COOKIE, Authenticator

    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens["alice"])
    authenticator = Authenticator(page_service.settings)
    alice = authenticator.from_token(page_service.tokens["alice"])
    assert alice is not None
    expired = authenticator.session_cookie(
        alice, now=time.time() - authenticator.session_ttl - 60)
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": expired,
                               "url": page_service.origin, "httpOnly": True,
                               "sameSite": "Strict"}])
    add_file(page, make_file(tmp_path / "late.mp4", 20 * MiB, seed=4))
    press_upload(page)
    assert "session has ended" in _problem(page)
    assert page.is_visible("#sign-in")

    sign_in(page, page_service.tokens["alice"])
    page.locator(".uppy-StatusBar-actionBtn--retry").click()
    page.locator("#done-objects li[data-key='alice/late.mp4']").wait_for(timeout=60_000)


def test_a_file_over_the_size_limit_is_refused_before_a_byte_is_sent(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    page = page_service.new_page(browser)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    sign_in(page, page_service.tokens[SIZE_LIMITED])
    # The page learnt the limit from GET /v1/limits and says it.
    page.wait_for_function("() => document.getElementById('limits').textContent.includes('20 MiB')")
    before = page_service.proxy.counts()
    add_file(page, make_file(tmp_path / "long.mp4", LIMIT + 4 * MiB, seed=5))
    problem = _problem(page)
    assert "“long.mp4” (24 MiB) is larger than this service accepts for you (20 MiB at " \
           "most). It was not added, and nothing of it was sent." in problem, problem
    assert page.locator(".uppy-Dashboard-Item").count() == 0
    # Neither a signing call nor a byte to storage (the service's own listings go there).
    assert not [url for url in asked if "/s3/" in url or url.startswith(
        page_service.proxy.url)], asked
    assert (page_service.proxy.counts() - before).part_bytes == 0
    assert open_upload_id(page_service.bucket, f"{SIZE_LIMITED}/long.mp4") is None
    assert_fits(page)
    # A file right at the limit is accepted.
    add_file(page, make_file(tmp_path / "fits.mp4", LIMIT, seed=7))
    page.locator(".uppy-Dashboard-Item").first.wait_for(timeout=10_000)
    assert page.locator(".uppy-Dashboard-Item").count() == 1


def test_the_service_refuses_a_file_over_the_size_limit_that_a_page_let_through(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    """A page that does not check (an old one, or another client) meets the service's own
    check: the parts it sent are deleted, and the page says so in plain words."""
    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens[SIZE_LIMITED])
    page.wait_for_function("() => window.streamifyPage.uppy.opts.restrictions.maxFileSize")
    page.evaluate("window.streamifyPage.uppy.setOptions({restrictions: {maxFileSize: null}})")
    add_file(page, make_file(tmp_path / "long.mp4", LIMIT + 4 * MiB, seed=5))
    press_upload(page)
    problem = _problem(page)
    assert "“long.mp4” is larger than this service accepts" in problem, problem
    key = f"{SIZE_LIMITED}/long.mp4"
    assert open_upload_id(page_service.bucket, key) is None
    listed = page_service.bucket.client.list_objects_v2(Bucket=page_service.bucket.name)
    assert listed.get("KeyCount", 0) == 0


def test_the_network_going_down_is_said_plainly_and_the_upload_goes_on_after(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens["alice"])
    cdp = throttle(page, None, offline=True)
    add_file(page, make_file(tmp_path / "offline.mp4", 20 * MiB, seed=6))
    press_upload(page)
    assert "network is down" in _problem(page)
    cdp.send("Network.emulateNetworkConditions", ONLINE)
    page.locator("#done-objects li[data-key='alice/offline.mp4']").wait_for(timeout=60_000)
    assert page.is_hidden("#problem")


# The page's list calls that fail while the network is down report it only once the
# network is back (as a loaded browser may: the failure and the "online" event race).
_LATE_NETWORK_FAILURES = """() => {
  const fetchNow = window.fetch
  window.fetch = async (input, init) => {
    try {
      return await fetchNow(input, init)
    } catch (error) {
      const path = new URL(typeof input === 'string' ? input : input.url, location.href).pathname
      if (!navigator.onLine && ['/v1/uploads', '/v1/objects'].some((p) => path.startsWith(p))) {
        await new Promise((resolve) => window.addEventListener(
          'online', () => setTimeout(resolve, 100), { once: true }))
      }
      throw error
    }
  }
}"""


def test_a_list_call_that_failed_offline_says_nothing_once_the_network_is_back(
        page_service: PageService, browser: Any, tmp_path: Path) -> None:
    page = page_service.new_page(browser)
    sign_in(page, page_service.tokens["alice"])
    page.evaluate(_LATE_NETWORK_FAILURES)
    cdp = throttle(page, None, offline=True)
    add_file(page, make_file(tmp_path / "late.mp4", 20 * MiB, seed=8))
    press_upload(page)
    assert "network is down" in _problem(page)
    cdp.send("Network.emulateNetworkConditions", ONLINE)
    page.locator("#done-objects li[data-key='alice/late.mp4']").wait_for(timeout=60_000)
    assert page.is_hidden("#problem"), page.inner_text("#problem")


@pytest.fixture
def local_service() -> Iterator[dict[str, str]]:
    """``streamify serve --local`` in its own process; what it printed, by label."""
    if not CHROMIUM.is_file():
        pytest.skip(f"page tier skipped: {CHROMIUM} is missing")
    command = [sys.executable, "-m", "streamify", "serve", "--local", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    printed: dict[str, str] = {}
    try:
        while "Upload page" not in printed:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"serve --local ended early: printed {printed}")
            label, _, value = line.partition(":")
            if value.strip():
                printed[label.strip()] = value.strip()
        yield printed
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()


def test_serve_local_prints_a_sign_in_link_that_works_once(local_service: dict[str, str],
                                                          browser: Any) -> None:
    link = local_service["Upload page"]
    assert link.startswith(local_service["Streamify API"] + "/#signin=")
    assert local_service["Token"] not in link
    first = browser.new_context()
    try:
        page = first.new_page()
        page.goto(link)
        page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready")
        assert page.evaluate("document.body.dataset.state") == "signed-in"
        assert "#" not in page.url, "the code stays in the address bar"
    finally:
        first.close()
    second = browser.new_context()
    try:
        page = second.new_page()
        page.goto(link)
        page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready")
        assert page.evaluate("document.body.dataset.state") == "signed-out"
        assert "used already" in page.inner_text("#problem")
    finally:
        second.close()
