"""Outages of the control path, ridden out with the default retry budget.

Each case starts a 512 MiB upload with ``UploadConfig()``'s defaults, then takes a server
away in the middle of it: for 30 s it refuses connections (or drops the requests it
serves), then for 30 s it answers 503. The upload must finish by itself, byte-identical,
without sending again a byte that S3 already held (only a part cut in flight may go twice).

- the API service (``--api``), under the command line and the notebook ``Uploader``;
- S3's control calls in direct mode (the completion meets the outage while the part PUTs
  still go through), under the Python API;
- the whole S3 endpoint in direct mode, under the Python API and an fsspec
  ``open("wb")`` stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
import streamify
from streamify import HttpControlPlane, S3ControlPlane, StateStore, Uploader

from tests.faults._stack import TOKEN, Stack, object_sha256, sha256_file
from tests.helpers import make_file
from tests.wireproxy import WireProxy, any_request, part_puts

MiB = 1024 * 1024
SIZE = 512 * MiB
PART = 8 * MiB  # UploadConfig's default
CONCURRENCY = 4  # likewise
REFUSED = 30.0
UNAVAILABLE = 30.0


def _control_calls(method: str, target: str) -> bool:
    return not part_puts(method, target)


class Outage:
    """Takes ``proxy``'s server away: refused (the whole endpoint) or dropped (only the
    ``match``ing requests) for ``REFUSED`` seconds, then 503 for ``UNAVAILABLE``."""

    def __init__(self, proxy: WireProxy, *, whole: bool, match: Callable[[str, str], bool]
                 = any_request) -> None:
        self.proxy = proxy
        self.whole = whole
        self.match = match
        self.started: float | None = None
        self.requests_before = 0

    def start(self) -> None:
        self.started = time.monotonic()
        self.requests_before = len(self.proxy.requests)
        # Both rules are armed at once: while the first lasts, the second is not reached.
        if self.whole:
            self.proxy.refuse_connections(REFUSED)
        else:
            self.proxy.reset_for(REFUSED, match=self.match)
        self.proxy.fail_for(REFUSED + UNAVAILABLE, 503, "ServiceUnavailable",
                            retry_after=None, match=self.match)

    def start_when(self, condition: Callable[[], bool]) -> threading.Thread:
        """Start the outage from a thread once ``condition()`` holds."""
        def watch() -> None:
            while not condition():
                time.sleep(0.02)
            self.start()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def assert_ridden_out(self) -> None:
        """The client met both halves of the outage and outlasted it."""
        assert self.started is not None, "the outage never started"
        assert time.monotonic() - self.started >= REFUSED + UNAVAILABLE - 1
        assert self.proxy.faults["503 ServiceUnavailable"] >= 1, dict(self.proxy.faults)
        if not self.whole:
            assert self.proxy.faults["reset"] >= 1, dict(self.proxy.faults)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path: Path = make_file(tmp_path / "video.mp4", SIZE, seed=17)
    return path


def _resent(stack: Stack, before: int, size: int) -> int:
    resent = stack.s3.counts().part_bytes - before - size
    print(f"re-sent {resent} bytes ({resent / MiB:.1f} MiB) of {size / MiB:.0f} MiB")
    return resent


def _sent_at_least(stack: Stack, before: int, amount: int) -> Callable[[], bool]:
    return lambda: stack.s3.counts().part_bytes - before >= amount


def _python_upload(stack: Stack, path: Path, key: str, state: Path, control: object
                   ) -> tuple[streamify.UploadResult, list[streamify.Event]]:
    events: list[streamify.Event] = []
    with Uploader(path, f"s3://{stack.bucket}/{key}", control=control,  # type: ignore[arg-type]
                  state=StateStore(state)) as uploader:
        uploader.subscribe(events.append)
        return uploader.run(), events


@pytest.fixture
def direct(stack: Stack) -> Iterator[S3ControlPlane]:
    control = S3ControlPlane(endpoint_url=stack.s3.url)
    yield control
    control.close()


def test_the_command_rides_out_an_api_service_outage(
        stack: Stack, video: Path, tmp_path: Path) -> None:
    key = stack.key("outage/cli.mp4")
    before = stack.s3.counts().part_bytes
    outage = Outage(stack.api, whole=True)
    outage.start_when(_sent_at_least(stack, before, SIZE // 4))
    env = {**os.environ, "STREAMIFY_TOKEN": TOKEN, "STREAMIFY_STATE_DIR": str(tmp_path / "s")}
    run = subprocess.run(
        [sys.executable, "-m", "streamify", "upload", "--api", stack.api_url, str(video),
         f"s3://{stack.bucket}/{key}"], env=env, capture_output=True, text=True, timeout=600,
        check=False)

    assert run.returncode == 0, run.stderr[-3000:]
    outage.assert_ridden_out()
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(video)
    assert _resent(stack, before, SIZE) == 0  # a refused call sends nothing
    assert stack.open_uploads() == []


def test_the_notebook_uploader_rides_out_an_api_service_outage(
        stack: Stack, video: Path, tmp_path: Path) -> None:
    from streamify_notebook import Uploader as NotebookUploader

    key = stack.key("outage/notebook.mp4")
    before = stack.s3.counts().part_bytes
    outage = Outage(stack.api, whole=True)
    outage.start_when(_sent_at_least(stack, before, SIZE // 4))
    control = HttpControlPlane(stack.api_url, token=TOKEN)
    try:
        widget = NotebookUploader(video, f"s3://{stack.bucket}/{key}", control=control,
                                  state_dir=str(tmp_path / "s"))
        result = widget.run()
    finally:
        control.close()

    assert result.status == "completed"
    outage.assert_ridden_out()
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(video)
    assert _resent(stack, before, SIZE) == 0


def test_completing_rides_out_an_outage_of_s3_control_calls(
        stack: Stack, video: Path, tmp_path: Path, direct: S3ControlPlane) -> None:
    key = stack.key("outage/complete.mp4")
    before = stack.s3.counts().part_bytes
    # The part PUTs go on through it; the completion meets it.
    outage = Outage(stack.s3, whole=False, match=_control_calls)
    outage.start_when(_sent_at_least(stack, before, SIZE // 2))

    result, events = _python_upload(stack, video, key, tmp_path / "s", direct)

    assert result.status == "completed"
    outage.assert_ridden_out()
    completing = [e for e in events if isinstance(e, streamify.Retrying) and e.number == 0]
    assert completing and all("completing" in e.what for e in completing), completing[:3]
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(video)
    assert _resent(stack, before, SIZE) == 0


def test_the_python_api_rides_out_an_outage_of_the_whole_s3_endpoint(
        stack: Stack, video: Path, tmp_path: Path, direct: S3ControlPlane) -> None:
    key = stack.key("outage/direct.mp4")
    before = stack.s3.counts().part_bytes
    outage = Outage(stack.s3, whole=True)
    outage.start_when(_sent_at_least(stack, before, SIZE // 4))

    result, events = _python_upload(stack, video, key, tmp_path / "s", direct)

    assert result.status == "completed"
    outage.assert_ridden_out()
    assert any(isinstance(e, streamify.Retrying) and e.number for e in events)
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(video)
    # Only the parts in flight when the connections were cut may go twice.
    assert _resent(stack, before, SIZE) <= CONCURRENCY * PART


def test_an_fsspec_stream_rides_out_an_outage_of_the_whole_s3_endpoint(
        stack: Stack, video: Path) -> None:
    key = stack.key("outage/stream.mp4")
    before = stack.s3.counts().part_bytes
    outage = Outage(stack.s3, whole=True)
    outage.start_when(_sent_at_least(stack, before, SIZE // 4))
    fs = fsspec.filesystem("streamify", endpoint_url=stack.s3.url, skip_instance_cache=True)

    with video.open("rb") as source, fs.open(f"{stack.bucket}/{key}", "wb") as sink:
        while chunk := source.read(4 * MiB):
            sink.write(chunk)

    outage.assert_ridden_out()
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(video)
    assert _resent(stack, before, SIZE) <= CONCURRENCY * PART
    assert stack.open_uploads() == []
