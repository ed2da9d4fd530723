"""A real ``streamify serve`` told to stop (SIGTERM): unready at once while still alive,
serving for ``drain_delay``, then the requests in flight finish within ``drain_deadline``
(or are cut), and the process exits 0.

The request in flight is a sign call whose first storage call (ListMultipartUploads, the
ownership check) the proxy in front of moto holds until the test releases it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from streamify.server import hash_api_key

from tests.conftest import Bucket, free_port
from tests.server.conftest import COOKIE_SECRET, TOKENS
from tests.wireproxy import WireProxy

SERVE = [sys.executable, "-c", "from streamify.server._command import serve; serve()"]
KEY = "users/alice/drained.bin"


def _listing_uploads(method: str, target: str) -> bool:
    """ListMultipartUploads: ``GET /bucket?uploads&...``."""
    _, _, query = target.partition("?")
    return method == "GET" and "uploads" in query.split("&")


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@contextlib.contextmanager
def replica(storage: str, bucket: str, *, delay: float, deadline: int) -> Iterator[Replica]:
    """``streamify serve`` on a free port, its stderr collected line by line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    env.update({
        "STREAMIFY_BUCKET": bucket, "STREAMIFY_S3_ENDPOINT_URL": storage,
        "STREAMIFY_COOKIE_SECRET": COOKIE_SECRET,
        "STREAMIFY_PRINCIPALS": json.dumps([{
            "name": "alice", "key_sha256": hash_api_key(TOKENS["alice"]),
            "prefix": "users/alice/"}]),
        "STREAMIFY_DRAIN_DELAY": str(delay), "STREAMIFY_DRAIN_DEADLINE": str(deadline),
    })
    port = free_port()
    process = subprocess.Popen([*SERVE, "--port", str(port)], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, env=env)
    running = Replica(f"http://127.0.0.1:{port}", process)
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: running.lines.extend(process.stderr or ()),
                              daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{running.url}/healthz").status_code == 200:
                    break
            assert process.poll() is None, "".join(running.lines)
            assert time.monotonic() - started < 30, "serve did not start"
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        reader.join(10)
        process.stderr.close()


def _sign_in_background(url: str, upload_id: str,
                        answers: list[httpx.Response | Exception]) -> threading.Thread:
    def sign() -> None:
        try:
            answers.append(httpx.post(
                f"{url}/v1/uploads/{upload_id}/sign", timeout=60,
                headers={"Authorization": f"Bearer {TOKENS['alice']}",
                         "X-Request-ID": "held-sign"},
                json={"key": KEY, "parts": [{"number": 1}]}))
        except httpx.TransportError as exc:
            answers.append(exc)

    thread = threading.Thread(target=sign, daemon=True)
    thread.start()
    return thread


@dataclass
class Drained:
    """A replica sent SIGTERM at ``signalled`` while a sign call (``signing``) was held in
    storage; ``answers`` gets the sign call's answer, or its transport error."""

    served: Replica
    signing: threading.Thread
    signalled: float
    answers: list[httpx.Response | Exception]


@contextlib.contextmanager
def sigterm_during_a_held_sign(proxy: WireProxy, bucket: str, *, delay: float,
                               deadline: int) -> Iterator[Drained]:
    with replica(proxy.url, bucket, delay=delay, deadline=deadline) as served:
        answers: list[httpx.Response | Exception] = []
        signing = _start_held_sign(served, proxy, answers)
        served.process.send_signal(signal.SIGTERM)
        yield Drained(served, signing, time.monotonic(), answers)


def _start_held_sign(served: Replica, proxy: WireProxy,
                     answers: list[httpx.Response | Exception]) -> threading.Thread:
    created = httpx.post(f"{served.url}/v1/uploads", json={"key": KEY, "size": 5},
                         headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert created.status_code == 200, created.text
    proxy.hold_requests(match=_listing_uploads)
    thread = _sign_in_background(served.url, created.json()["upload_id"], answers)
    started = time.monotonic()
    while proxy.held < 1:
        assert time.monotonic() - started < 10, "the sign call never reached storage"
        time.sleep(0.02)
    return thread


@pytest.fixture
def proxy(moto_bucket: Bucket) -> Iterator[WireProxy]:
    """A proxy in front of moto, for the replica's storage."""
    wire = WireProxy(moto_bucket.endpoint)
    yield wire
    wire.close()


@pytest.mark.timeout(120)
def test_sigterm_drains_then_lets_the_request_in_flight_finish(
        moto_bucket: Bucket, proxy: WireProxy) -> None:
    with sigterm_during_a_held_sign(proxy, moto_bucket.name, delay=3,
                                    deadline=30) as drained:
        served, signalled, answers = drained.served, drained.signalled, drained.answers
        # Within the delay: alive, unready, still answering.
        ready = httpx.get(f"{served.url}/readyz")
        assert (ready.status_code, ready.json()) == (503, {
            "status": "unready", "checks": {"drain": "draining"}})
        assert httpx.get(f"{served.url}/healthz").status_code == 200
        # After it: no new connection is accepted, the held request still runs.
        while True:
            try:
                httpx.get(f"{served.url}/healthz", timeout=2)
            except httpx.ConnectError:
                break
            assert time.monotonic() - signalled < 10, "still accepting after the delay"
            time.sleep(0.1)
        assert time.monotonic() - signalled >= 2.5
        assert served.process.poll() is None and not answers
        proxy.release()
        drained.signing.join(30)
        [answer] = answers
        assert isinstance(answer, httpx.Response) and answer.status_code == 200
        assert served.wait(timeout=20) == 0
    lines = [json.loads(line) for line in served.lines]
    [sign_line] = [r for r in lines if r.get("path", "").endswith("/sign")]
    assert (sign_line["status"], sign_line["request_id"]) == (200, "held-sign")
    assert TOKENS["alice"] not in "".join(served.lines)
    assert not [r for r in lines if r["level"] == "error"], lines


@pytest.mark.timeout(120)
def test_a_request_past_the_deadline_is_cut_and_the_process_still_exits(
        moto_bucket: Bucket, proxy: WireProxy) -> None:
    with sigterm_during_a_held_sign(proxy, moto_bucket.name, delay=0.5,
                                    deadline=1) as drained:
        served = drained.served
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.wait(timeout=30)
        assert served.process.returncode == 0, "".join(served.lines)
        # The delay, the deadline, a second for cancelled requests, and start-up slack.
        assert time.monotonic() - drained.signalled < 6
        drained.signing.join(30)
    lines = [json.loads(line) for line in served.lines]
    [answer] = drained.answers
    assert not (isinstance(answer, httpx.Response) and answer.status_code == 200), answer
    assert any("past the drain deadline are cut" in r.get("message", "") for r in lines), lines
