"""Fair signing: a principal flooding the service gets 429s, signing that may wait runs a
few calls at a time off the event loop, and ``/healthz`` and other principals keep
answering meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from streamify import Destination, PartToSign, S3ControlPlane, SignedPart
from streamify.server import create_app, serve_in_thread

from tests.conftest import Bucket
from tests.server._support import assert_companion_error, assert_problem
from tests.server.conftest import TOKENS, running_api, service_settings

SIGNERS = 2
FLOOD = 60  # more than uvicorn's 40 worker threads


def _create(client: httpx.Client, key: str) -> str:
    created = client.post("/v1/uploads", json={"key": key, "size": 1})
    assert created.status_code == 200, created.text
    upload_id: str = created.json()["upload_id"]
    return upload_id


def test_a_principal_over_its_rate_gets_429_with_retry_after(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket, rate_limit=5, rate_burst=10) as api:
        alice, bob = api.client(), api.client("bob")
        key = api.key("alice", "fast.bin")
        upload_id = _create(alice, key)  # 1 token
        sign = f"/v1/uploads/{upload_id}/sign"
        parts = [{"number": n} for n in range(1, 9)]
        assert alice.post(sign, json={"key": key, "parts": parts}).status_code == 200  # 1 + 8
        refused = alice.post(sign, json={"key": key, "parts": [{"number": 1}]})
        assert_problem(refused, 429, "rate-limited")
        assert refused.headers["Retry-After"] == "1"
        companion = alice.get(f"/s3/multipart/{upload_id}/1", params={"key": key})
        assert_companion_error(companion, 429)
        assert int(companion.headers["Retry-After"]) >= 1
        # Others are not held back by alice's limit; health is never limited.
        assert bob.get("/v1/uploads").status_code == 200
        assert api.client(None).get("/healthz").status_code == 200
        time.sleep(int(refused.headers["Retry-After"]) + 0.2)
        again = alice.post(sign, json={"key": key, "parts": [{"number": 1}]})
        assert again.status_code == 200, again.text


class GatedControl(S3ControlPlane):
    """The real control plane, whose signing waits for ``gate`` and counts how many sign
    calls run at once."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint_url=endpoint, region="us-east-1")
        self.gate = threading.Event()
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    @property
    def signs_without_io(self) -> bool:
        return False  # its signing waits for the gate: never on the event loop

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self.gate.wait(60)
            return super().sign_parts(destination, upload_id, parts, expires_in=expires_in)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def gated(moto_bucket: Bucket) -> Iterator[tuple[str, GatedControl]]:
    control = GatedControl(moto_bucket.endpoint)
    settings = service_settings(moto_bucket, sign_concurrency=SIGNERS, rate_limit=10_000,
                                rate_burst=10_000, max_in_flight=FLOOD + 1)
    try:
        with serve_in_thread(create_app(settings, control=control)) as url:
            yield url, control
    finally:
        control.gate.set()


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_health_and_other_principals_answer_while_one_floods_signing(
        gated: tuple[str, GatedControl]) -> None:
    url, control = gated
    alice = httpx.Client(base_url=url, timeout=60,
                         headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    bob = httpx.Client(base_url=url, timeout=5,
                       headers={"Authorization": f"Bearer {TOKENS['bob']}"})
    probe = httpx.Client(base_url=url, timeout=5)
    key = "users/alice/flood.bin"
    upload_id = _create(alice, key)

    def sign(number: int) -> int:
        return alice.post(f"/v1/uploads/{upload_id}/sign", json={
            "key": key, "parts": [{"number": number}]}).status_code

    try:
        with ThreadPoolExecutor(FLOOD) as pool:
            flood = [pool.submit(sign, n) for n in range(1, FLOOD + 1)]
            _wait_for(lambda: control.active == SIGNERS, "the signers to be busy")
            time.sleep(0.5)  # the rest of the flood arrives and queues
            # Every sign call is stuck, yet the service answers at once.
            assert probe.get("/healthz").json() == {"status": "ok"}
            assert bob.get("/v1/uploads").status_code == 200
            assert control.active == SIGNERS and not any(f.done() for f in flood)
            control.gate.set()
            assert [f.result() for f in flood] == [200] * FLOOD
    finally:
        control.gate.set()
        for client in (alice, bob, probe):
            client.close()
    assert control.peak == SIGNERS


def test_the_http_control_plane_waits_out_a_429(moto_bucket: Bucket) -> None:
    """Every control call an upload makes goes through the retry budget the engine puts
    around the control plane; a 429 is waited out there, as its Retry-After says."""
    from streamify import HttpControlPlane, UploadConfig
    from streamify._calls import retrying

    with running_api(moto_bucket, rate_limit=2, rate_burst=2) as api:
        plane = retrying(HttpControlPlane(api.url, token=TOKENS["alice"]), UploadConfig())
        mine = Destination(api.bucket.name, api.key("alice", "x.bin"))
        for _ in range(4):
            assert plane.list_uploads(mine) == []
        # Starting an upload is not idempotent, but a 429 means it never started.
        upload_ids = {plane.create_upload(mine, content_type="a/b", metadata={},
                                          checksum="none", size=1) for _ in range(3)}
        assert len(upload_ids) == 3 == len(api.bucket.open_uploads())
        lines = [line for line in api.log.splitlines() if '"path":"/v1/uploads"' in line]
        assert sum('"status":429' in line for line in lines) >= 2
        assert sum('"status":200' in line for line in lines) == 4 + 3

