"""Storage restarted under an upload: a private radosgw (memstore, its own directory and
ports, beside the shared one) is SIGKILLed and started again while parts are on the wire,
and while CompleteMultipartUpload is on its way. The OSD keeps the parts in memory, so the
restart loses nothing S3 had acknowledged: each upload finishes by itself, byte-identical,
and the wire proxy in front of radosgw shows that only the parts in flight were sent again.

The cluster is built by ``../shared/s3/rgw-up.sh`` (about 6-20 s), once for the module, and
removed by ``rgw-down.sh --wipe`` after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamify
from streamify import UploadConfig

from tests.faults._rgw import SCRIPTS, PrivateRgw, RgwUnavailable
from tests.faults._rgw import private_rgw as private_rgw_cluster
from tests.faults._stack import Stack, object_sha256, open_stack, run_upload, sha256_file
from tests.helpers import make_file

pytestmark = pytest.mark.reals3

MiB = 1024 * 1024
PART = 5 * MiB
CONCURRENCY = 3
SIZE = 6 * PART + 7
CONFIG = UploadConfig(part_size=PART, concurrency=CONCURRENCY, bwlimit=8 * MiB,
                      connect_timeout=2.0, read_timeout=10.0, backoff_base=0.1,
                      backoff_max=1.0)


@pytest.fixture(scope="module")
def private_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRgw]:
    if not (SCRIPTS / "rgw-up.sh").is_file():
        pytest.skip(f"storage restart skipped: {SCRIPTS / 'rgw-up.sh'} is missing (the "
                    "shared/s3 scripts beside the repository start a private radosgw for it)")
    try:
        with private_rgw_cluster(tmp_path_factory.mktemp("rgw")) as rgw, \
                pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ACCESS_KEY_ID", rgw.access_key)
            patch.setenv("AWS_SECRET_ACCESS_KEY", rgw.secret_key)
            yield rgw
    except RgwUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def restart_stack(private_rgw: PrivateRgw) -> Iterator[Stack]:
    """One bucket and API service for the module, made before any restart: after one,
    radosgw creates a bucket only once the killed daemon's watch times out (about 30 s)."""
    with open_stack(private_rgw.endpoint, services=1, keep_bucket=True) as stack:
        yield stack


def _resent(stack: Stack, upload_id: str) -> dict[int, int]:
    """Part body bytes that crossed the proxy beyond each part's size, by part number."""
    parts = -(-SIZE // PART)
    sizes = {n: PART if n < parts else SIZE - PART * (parts - 1) for n in range(1, parts + 1)}
    sent = stack.s3.part_bytes(upload_id)
    assert set(sent) == set(sizes), sent
    return {n: sent[n] - sizes[n] for n in sizes if sent[n] > sizes[n]}


def _upload_id(events: list[streamify.Event]) -> str:
    (started,) = [e for e in events if isinstance(e, streamify.Started)]
    return started.upload_id


def _check(stack: Stack, key: str, path: Path, result: streamify.UploadResult) -> None:
    assert result.status == "completed", result
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
    assert stack.open_uploads() == []


@pytest.mark.parametrize("mode", ["direct", "api"])
def test_radosgw_restarted_with_parts_in_flight(
        private_rgw: PrivateRgw, restart_stack: Stack, tmp_path: Path, mode: str) -> None:
    path = make_file(tmp_path / "v.bin", SIZE, seed=41)
    stack = restart_stack
    key = stack.key(f"restart/parts-{mode}.bin")
    restarts = private_rgw.restarts
    done_at_kill: set[int] = set()
    done: list[int] = []
    reached = threading.Event()

    def watch(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone):
            done.append(event.number)
            if len(done) == 2:
                reached.set()

    def restart() -> None:
        assert reached.wait(60)
        time.sleep(0.4)  # the next parts are on the wire
        done_at_kill.update(done)
        private_rgw.restart()

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        result, events = run_upload(stack, path, key, tmp_path / "state", CONFIG,
                                    mode=mode, on_event=watch)
    finally:
        restarter.join(120)
    assert private_rgw.restarts == restarts + 1 and done_at_kill
    resent = _resent(stack, _upload_id(events))
    retried = sorted({e.number for e in events if isinstance(e, streamify.Retrying)} - {0})
    print(f"\nradosgw restarted with parts in flight ({mode}): done before the kill "
          f"{sorted(done_at_kill)}, retried {retried}, re-sent {resent} "
          f"({sum(resent.values())} bytes)")
    _check(stack, key, path, result)
    assert resent, "no part was in flight at the restart"
    assert not set(resent) & done_at_kill, (resent, done_at_kill)
    assert len(resent) <= CONCURRENCY and sum(resent.values()) <= CONCURRENCY * PART


def _completes(method: str, target: str) -> bool:
    return method == "POST" and "uploadId=" in target


def test_radosgw_restarted_as_the_upload_completes(
        private_rgw: PrivateRgw, restart_stack: Stack, tmp_path: Path) -> None:
    path = make_file(tmp_path / "v.bin", SIZE, seed=42)
    stack = restart_stack
    key = stack.key("restart/complete.bin")
    restarts, held = private_rgw.restarts, stack.s3.held
    stack.s3.hold_requests(match=_completes)

    def restart() -> None:
        deadline = time.monotonic() + 60
        while stack.s3.held == held and time.monotonic() < deadline:
            time.sleep(0.05)
        private_rgw.restart()
        stack.s3.release()

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        result, events = run_upload(stack, path, key, tmp_path / "state", CONFIG)
    finally:
        stack.s3.release()
        restarter.join(120)
    assert stack.s3.held > held and private_rgw.restarts == restarts + 1
    upload_id = _upload_id(events)
    resent = _resent(stack, upload_id)
    completes = sum(_completes(method, target) and upload_id in target
                    for method, target in stack.s3.requests)
    print(f"\nradosgw restarted as the upload completes: CompleteMultipartUpload sent "
          f"{completes} times, re-sent {resent} ({sum(resent.values())} bytes)")
    _check(stack, key, path, result)
    assert resent == {}
