"""The upload engine against moto's S3 server over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import boto3
import pytest
import streamify
import urllib3
from streamify import (
    Destination,
    PartSender,
    Progress,
    S3ControlPlane,
    SourceChangedError,
    StateStore,
    UploadCancelledError,
    UploadConfig,
    UploadedPart,
    Uploader,
    UploadGoneError,
)
from streamify._control import PartToSign, SignedPart
from streamify._retry import PartRejected

from tests.conftest import Bucket
from tests.helpers import RecordingSender, assert_checksums_signed_and_sent, make_file

MiB = 1024 * 1024
CONFIG = UploadConfig(part_size=5 * MiB, concurrency=3)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Every uploader a test makes is closed after it (it holds the file open).
_uploaders = contextlib.ExitStack()


@pytest.fixture(autouse=True)
def _close_uploaders() -> Iterator[None]:
    with _uploaders:
        yield


def _uploader(path: Path, bucket: Bucket, key: str, state_dir: str,
              config: UploadConfig = CONFIG, **kwargs: object) -> Uploader:
    return _uploaders.enter_context(Uploader(
        path, bucket.url(key), control=S3ControlPlane(endpoint_url=bucket.endpoint),
        config=config, state=StateStore(state_dir), **kwargs))  # type: ignore[arg-type]


def _pause_at(uploader: Uploader, fraction: float) -> None:
    def on_event(event: streamify.Event) -> None:
        if isinstance(event, Progress) and event.bytes_done >= event.total_bytes * fraction:
            uploader.pause()

    uploader.subscribe(on_event)


def test_upload_and_verify(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 23 * MiB + 7)
    result = streamify.upload(path, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                              part_size="5MiB")
    assert result.status == "completed"
    assert result.parts == 5
    assert result.etag.endswith("-5")
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())
    assert moto_bucket.open_uploads() == []
    assert StateStore(state_dir).all() == []


def test_empty_file(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    result = streamify.upload(path, moto_bucket.url("empty"), endpoint_url=moto_bucket.endpoint)
    assert result.size == 0
    assert moto_bucket.read("empty") == b""


def test_pause_then_resume_sends_only_the_rest(tmp_path: Path, moto_bucket: Bucket,
                                               state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 40 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.4)
    paused = first.run()
    assert paused.status == "paused"
    assert len(moto_bucket.open_uploads()) == 1
    sent_before = paused.bytes_sent

    events: list[streamify.Event] = []
    second = _uploader(path, moto_bucket, "v.mp4", state_dir)
    second.subscribe(events.append)
    result = second.run()
    assert result.status == "completed" and result.resumed
    assert result.upload_id == paused.upload_id
    assert result.bytes_resumed >= sent_before - CONFIG.concurrency * CONFIG.part_size
    assert result.bytes_sent == path.stat().st_size - result.bytes_resumed
    resumed = [e for e in events if isinstance(e, streamify.Resumed)]
    assert resumed and resumed[0].found_by == "state"
    progress = [e.bytes_done for e in events if isinstance(e, Progress)]
    assert progress[0] == result.bytes_resumed  # the bar starts from what S3 holds
    assert progress[-1] == path.stat().st_size
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


def test_resume_without_local_state_finds_the_upload_by_listing(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.5)
    first.run()
    other_machine = str(tmp_path / "elsewhere")
    events: list[streamify.Event] = []
    second = _uploader(path, moto_bucket, "v.mp4", other_machine,
                       config=CONFIG.replace(part_size=16 * MiB))  # plan is read back from S3
    second.subscribe(events.append)
    result = second.run()
    assert result.resumed and result.bytes_resumed > 0
    assert [e.found_by for e in events if isinstance(e, streamify.Resumed)] == ["listing"]
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


def test_cancel_aborts_the_upload_and_forgets_it(tmp_path: Path, moto_bucket: Bucket,
                                                 state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    uploader = _uploader(path, moto_bucket, "v.mp4", state_dir)
    def cancel_on_part_done(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone):
            uploader.cancel()

    uploader.subscribe(cancel_on_part_done)
    with pytest.raises(UploadCancelledError, match="cancelled"):
        uploader.run()
    assert moto_bucket.open_uploads() == []
    assert StateStore(state_dir).all() == []


def test_changed_source_is_refused_and_the_old_upload_kept(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.5)
    first.run()
    make_file(path, 30 * MiB, seed=9)
    with pytest.raises(SourceChangedError, match=r"v\.mp4.*streamify abort"):
        _uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert len(moto_bucket.open_uploads()) == 1
    with pytest.raises(SourceChangedError, match="does not match"):
        _uploader(path, moto_bucket, "v.mp4", str(tmp_path / "no-state")).run()
    assert len(moto_bucket.open_uploads()) == 1


@pytest.mark.parametrize("policy", ["restart", "fail"])
def test_upload_aborted_behind_our_back(tmp_path: Path, moto_bucket: Bucket, state_dir: str,
                                        policy: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.3)
    paused = first.run()
    moto_bucket.client.abort_multipart_upload(Bucket=moto_bucket.name, Key="v.mp4",
                                              UploadId=paused.upload_id)
    again = _uploader(path, moto_bucket, "v.mp4", state_dir,
                      config=CONFIG.replace(on_upload_gone=policy))
    if policy == "fail":
        with pytest.raises(UploadGoneError, match="aborted or expired"):
            again.run()
        # The stale hint is gone, so the next run starts afresh.
        assert _uploader(path, moto_bucket, "v.mp4", state_dir).run().status == "completed"
    else:
        result = again.run()
        assert result.restarted and result.upload_id != paused.upload_id
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


class FlakySender(PartSender):
    """Drops the connection on the first attempt of every part."""

    def __init__(self) -> None:
        super().__init__(pool_size=4)
        self.failed: set[int] = set()
        self.lock = threading.Lock()

    def put(self, signed: SignedPart, body: bytes, on_progress=None) -> str:  # type: ignore[no-untyped-def]
        with self.lock:
            first = signed.number not in self.failed
            self.failed.add(signed.number)
        if first:
            if on_progress:
                on_progress(len(body) // 2)  # half the bytes went out, then the link dropped
            raise urllib3.exceptions.ProtocolError("connection reset by peer")
        return super().put(signed, body, on_progress)


def test_transient_failures_are_retried_without_double_counting(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    uploader = _uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(backoff_base=0.01), sender=FlakySender())
    events: list[streamify.Event] = []
    uploader.subscribe(events.append)
    result = uploader.run()
    retries = [e for e in events if isinstance(e, streamify.Retrying)]
    assert len(retries) == result.parts == 3
    assert all("connection reset" in e.reason for e in retries)
    progress = [e.bytes_done for e in events if isinstance(e, Progress)]
    assert max(progress) == progress[-1] == path.stat().st_size
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


def test_retries_are_bounded(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    class DeadLink(PartSender):
        def put(self, signed: SignedPart, body: bytes, on_progress=None) -> str:  # type: ignore[no-untyped-def]
            raise urllib3.exceptions.ProtocolError("connection reset by peer")

    path = make_file(tmp_path / "v.mp4", 6 * MiB)
    uploader = _uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(backoff_base=0.001, max_attempts=3),
                         sender=DeadLink(pool_size=1))
    with pytest.raises(streamify.TransferError, match=r"failed 3 times.*rerun"):
        uploader.run()
    assert len(StateStore(state_dir).all()) == 1  # kept for the rerun


def test_fsspec_source(moto_bucket: Bucket, state_dir: str) -> None:
    import fsspec

    data = random.Random(3).randbytes(11 * MiB)
    fsspec.filesystem("memory").pipe_file("/clips/a.bin", data)
    result = streamify.upload("memory://clips/a.bin", moto_bucket.url("a.bin"),
                              endpoint_url=moto_bucket.endpoint, part_size="5MiB")
    assert result.parts == 3
    assert moto_bucket.read("a.bin") == data


def test_list_parts_pages_through_more_than_1000_parts(moto_bucket: Bucket) -> None:
    client = moto_bucket.client
    upload_id = client.create_multipart_upload(Bucket=moto_bucket.name, Key="many")["UploadId"]
    for number in range(1, 1006):
        client.upload_part(Bucket=moto_bucket.name, Key="many", UploadId=upload_id,
                           PartNumber=number, Body=b"x")
    parts = S3ControlPlane(endpoint_url=moto_bucket.endpoint).list_parts(
        Destination(moto_bucket.name, "many"), upload_id)
    assert [p.number for p in parts] == list(range(1, 1006))


def test_additional_checksum_is_signed_into_every_part(tmp_path: Path, moto_bucket: Bucket,
                                                      state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    sender = RecordingSender()
    result = _uploader(path, moto_bucket, "v.mp4", state_dir, sender=sender,
                       config=CONFIG.replace(checksum="sha256")).run()
    assert result.status == "completed" and len(sender.puts) == result.parts == 3
    assert_checksums_signed_and_sent(sender.puts, "sha256")
    completed = moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)["Contents"][0]
    assert completed.get("ChecksumAlgorithm") == ["SHA256"]  # the upload was started with it


def test_bandwidth_limit_holds_the_rate_down(tmp_path: Path, moto_bucket: Bucket,
                                             state_dir: str) -> None:
    # 10 MiB at 4 MiB/s with one second of burst cannot finish in under 1.5 s, however
    # fast the machine: a lower bound only, so a slow machine never fails it.
    path = make_file(tmp_path / "v.mp4", 10 * MiB)
    result = _uploader(path, moto_bucket, "v.mp4", state_dir,
                       config=CONFIG.replace(bwlimit=4 * MiB)).run()
    assert result.seconds >= 1.5


def test_a_run_that_died_after_completing_is_not_uploaded_again(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    store = StateStore(state_dir)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir,
                      config=CONFIG.replace(concurrency=1))
    def pause_on_part_done(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone):
            first.pause()

    first.subscribe(pause_on_part_done)
    paused = first.run()
    assert paused.status == "paused"
    saved = store.all()[0]
    assert _uploader(path, moto_bucket, "v.mp4", state_dir).run().status == "completed"
    store.save(saved)  # as if the process died between completing and forgetting the upload
    again = _uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert again.status == "completed"
    assert again.bytes_sent == 0 and again.upload_id == paused.upload_id
    assert store.all() == []


def test_a_touched_but_unchanged_file_still_resumes(tmp_path: Path, moto_bucket: Bucket,
                                                    state_dir: str) -> None:
    import os

    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.5)
    first.run()
    os.utime(path, (1e9, 1e9))  # same bytes, new modification time (touch, cp, rsync...)
    result = _uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert result.resumed and result.bytes_resumed > 0
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


def test_no_state_and_only_the_last_part_in_s3_resumes_the_unchanged_file(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    # 22 MiB in 8 MiB parts; only part 3 (the last, 6 MiB) reached S3, and this machine has
    # no state. Read as a full part, 6 MiB would mean another plan and a "changed" file.
    path = make_file(tmp_path / "v.mp4", 22 * MiB)
    data = path.read_bytes()
    client = moto_bucket.client
    upload_id = client.create_multipart_upload(Bucket=moto_bucket.name, Key="v.mp4")["UploadId"]
    client.upload_part(Bucket=moto_bucket.name, Key="v.mp4", UploadId=upload_id, PartNumber=3,
                       Body=data[16 * MiB:])
    result = _uploader(path, moto_bucket, "v.mp4", state_dir,
                       config=UploadConfig(part_size=8 * MiB)).run()
    assert result.status == "completed" and result.resumed and result.upload_id == upload_id
    assert (result.bytes_resumed, result.bytes_sent) == (6 * MiB, 16 * MiB)
    assert _sha(moto_bucket.read("v.mp4")) == _sha(data)


def test_resume_uses_the_checksum_the_upload_was_started_with(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir,
                      config=CONFIG.replace(checksum="sha256"))
    _pause_at(first, 0.3)
    assert first.run().status == "paused"
    sender = RecordingSender()
    result = _uploader(path, moto_bucket, "v.mp4", state_dir, sender=sender).run()  # no checksum
    assert result.status == "completed" and result.bytes_sent > 0
    assert_checksums_signed_and_sent(sender.puts, "sha256")
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="v.mp4",
                                          ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256")


def _opaque(etag: str) -> str:
    return hashlib.md5(b"kms" + etag.encode()).hexdigest()


class OpaqueETagSender(RecordingSender):
    """Storage whose part ETags are not the MD5 of the body, as under SSE-KMS or SSE-C."""

    def __init__(self, real: dict[str, str]) -> None:
        super().__init__()
        self.real = real

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        etag = super().put(signed, body, on_progress)
        self.real[_opaque(etag)] = etag
        if "x-amz-checksum-sha256" in signed.headers:
            self.real[f"sha256:{etag}"] = signed.headers["x-amz-checksum-sha256"]
        return _opaque(etag)


class OpaqueETagControl(S3ControlPlane):
    """The same storage's control side: ListParts shows the opaque ETags and, as AWS does,
    each part's SHA-256 (moto lists no checksums); completing with opaque ETags works."""

    def __init__(self, endpoint: str, real: dict[str, str]) -> None:
        super().__init__(endpoint_url=endpoint)
        self.real = real

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        parts = super().list_parts(destination, upload_id)
        self.real.update({_opaque(p.etag): p.etag for p in parts})
        return [dataclasses.replace(p, etag=_opaque(p.etag),
                                    checksum=self.real.get(f"sha256:{p.etag}"))
                for p in parts]

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> streamify.ObjectInfo:
        return super().complete(destination, upload_id, [
            dataclasses.replace(p, etag=self.real[p.etag]) for p in parts])


@pytest.mark.parametrize("checksum", ["none", "sha256"])
def test_part_etags_that_are_not_md5s_are_checked_by_checksum_or_sent_again_once(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, checksum: str,
        caplog: pytest.LogCaptureFixture) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    config = CONFIG.replace(checksum=checksum)
    real: dict[str, str] = {}

    def uploader(sender: PartSender) -> Uploader:
        return _uploaders.enter_context(Uploader(
            path, moto_bucket.url("v.mp4"), config=config, sender=sender,
            control=OpaqueETagControl(moto_bucket.endpoint, real), state=StateStore(state_dir)))

    first = uploader(OpaqueETagSender(real))
    _pause_at(first, 0.5)
    paused = first.run()  # an ETag that is not the MD5 is no reason to resend a part
    assert paused.status == "paused" and paused.bytes_sent < 30 * MiB
    sender = OpaqueETagSender(real)
    result = uploader(sender).run()
    assert result.status == "completed"
    numbers = sorted(signed.number for signed, _ in sender.puts)
    assert numbers == sorted(set(numbers))  # every part at most once
    if checksum == "none":  # nothing to check them by: all sent again, once, and said so
        assert numbers == list(range(1, 7)) and result.bytes_resumed == 0
        assert "not the MD5" in caplog.text and "SSE-KMS" in caplog.text
    else:  # checked in place by their SHA-256
        assert result.bytes_resumed > 0
        assert len(numbers) == 6 - result.bytes_resumed // (5 * MiB)
    assert _sha(moto_bucket.read("v.mp4")) == _sha(path.read_bytes())


def test_verifying_the_parts_s3_holds_is_reported_and_can_be_paused_or_cancelled(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 40 * MiB)
    first = _uploader(path, moto_bucket, "v.mp4", state_dir, config=CONFIG.replace(concurrency=1))
    _pause_at(first, 0.6)
    assert first.run().status == "paused"
    held = sum(p["Size"] for p in moto_bucket.client.list_parts(
        Bucket=moto_bucket.name, Key="v.mp4", UploadId=StateStore(state_dir).all()[0].upload_id
    )["Parts"])

    def stop_while_verifying(uploader: Uploader, stop: Callable[[], None]) -> list[streamify.Event]:
        events: list[streamify.Event] = []

        def on_event(event: streamify.Event) -> None:
            events.append(event)
            if isinstance(event, streamify.Verifying) and event.bytes_checked > 0:
                stop()

        uploader.subscribe(on_event)
        return events

    second = _uploader(path, moto_bucket, "v.mp4", state_dir, config=CONFIG.replace(concurrency=1))
    events = stop_while_verifying(second, second.pause)
    assert second.run().status == "paused"
    checks = [e for e in events if isinstance(e, streamify.Verifying)]
    assert checks[0] == streamify.Verifying(0, held)
    assert 0 < checks[-1].bytes_checked < held  # stopped before hashing everything
    assert not any(isinstance(e, streamify.PartDone) for e in events)
    # Said as what S3 holds: a progress bar does not jump back to zero.
    assert events[-1] == streamify.Paused(held, 40 * MiB)
    assert len(moto_bucket.open_uploads()) == 1

    # The deadline ends a run that is verifying as it ends one that is sending.
    late = _uploader(path, moto_bucket, "v.mp4", state_dir,
                     config=CONFIG.replace(concurrency=1, deadline=1.0))
    stop_while_verifying(late, lambda: time.sleep(1.1))
    with pytest.raises(streamify.TransferError, match="deadline"):
        late.run()
    assert len(moto_bucket.open_uploads()) == 1

    third = _uploader(path, moto_bucket, "v.mp4", state_dir, config=CONFIG.replace(concurrency=1))
    stop_while_verifying(third, third.cancel)
    with pytest.raises(UploadCancelledError):
        third.run()
    assert moto_bucket.open_uploads() == [] and StateStore(state_dir).all() == []


def test_a_failure_after_a_pause_is_raised_not_taken_for_the_pause(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    uploader: Uploader

    class RefusedAfterPause(PartSender):
        def put(self, signed: SignedPart, body: bytes,
                on_progress: Callable[[int], None] | None = None) -> str:
            if signed.number == 1:  # the user pauses; this part, still in flight, then fails
                uploader.pause()
                time.sleep(0.5)
                raise PartRejected(400, "InvalidArgument", "refused")
            return super().put(signed, body, on_progress)

    uploader = _uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(concurrency=2),
                         sender=RefusedAfterPause(pool_size=2))
    with pytest.raises(streamify.TransferError, match=r"part 1 .* refused"):
        uploader.run()


def test_cancel_before_run_sends_nothing_and_aborts_the_open_upload(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    fresh = _uploader(path, moto_bucket, "v.mp4", state_dir, sender=RecordingSender())
    fresh.cancel()
    with pytest.raises(UploadCancelledError):
        fresh.run()
    assert moto_bucket.open_uploads() == [] and fresh._sender.puts == []  # type: ignore[attr-defined]

    first = _uploader(path, moto_bucket, "v.mp4", state_dir)
    _pause_at(first, 0.3)
    assert first.run().status == "paused"
    first.cancel()  # a paused upload the user gives up on
    with pytest.raises(UploadCancelledError):
        first.run()
    assert moto_bucket.open_uploads() == [] and StateStore(state_dir).all() == []


def test_a_subscriber_that_raises_is_logged_and_the_upload_goes_on(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str,
        caplog: pytest.LogCaptureFixture) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    uploader = _uploader(path, moto_bucket, "v.mp4", state_dir)
    events: list[streamify.Event] = []
    uploader.subscribe(events.append)

    def broken_bar(event: streamify.Event) -> None:
        if isinstance(event, Progress):
            raise RuntimeError("the bar broke")

    uploader.subscribe(broken_bar)
    assert uploader.run().status == "completed"
    assert "the bar broke" in caplog.text and "upload goes on" in caplog.text
    assert not any(isinstance(e, streamify.Failed) for e in events)
    assert isinstance(events[-1], streamify.Completed)


class ShortSigningControl(S3ControlPlane):
    """A control plane (or a proxy before it) that drops the last URL of every batch."""

    sign_linger = 0.05

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[streamify.PartToSign], *,
                   expires_in: int) -> list[SignedPart]:
        return super().sign_parts(destination, upload_id, parts, expires_in=expires_in)[:-1]


def test_a_control_plane_answering_too_few_urls_fails_the_waiters(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    uploader = _uploaders.enter_context(Uploader(
        path, moto_bucket.url("v.mp4"),
        control=ShortSigningControl(endpoint_url=moto_bucket.endpoint), config=CONFIG,
        state=StateStore(state_dir)))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            uploader.run()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the upload hangs on a part that was never signed"
    assert isinstance(failure[0], streamify.StreamifyError)
    assert "signed URLs" in str(failure[0])


class DeniedSender(RecordingSender):
    """Storage refuses part PUTs with 403 AccessDenied: ``expired`` times, or for good."""

    def __init__(self, expired: int | None) -> None:
        super().__init__()
        self.expired = expired

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        with self.lock:
            self.puts.append((signed, body))
            refuse = self.expired is None or len(self.puts) <= (self.expired or 0)
        if refuse:
            raise PartRejected(403, "AccessDenied", "Access Denied")
        return PartSender.put(self, signed, body, on_progress)


def test_a_permanent_403_is_resigned_once_then_fails_as_access_denied(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 3 * MiB)
    config = CONFIG.replace(concurrency=1, backoff_base=0.001)
    denied = DeniedSender(expired=None)
    with _uploader(path, moto_bucket, "v.mp4", state_dir, config=config,
                   sender=denied) as uploader, pytest.raises(streamify.AccessDeniedError) as err:
        uploader.run()
    assert err.value.exit_code == 6 and "freshly signed URL" in str(err.value)
    assert len(denied.puts) == 2  # the first URL, then one freshly signed

    expired_once = DeniedSender(expired=1)  # an expired URL: signed again, then it works
    result = _uploader(path, moto_bucket, "v.mp4", state_dir, config=config,
                       sender=expired_once).run()
    assert result.status == "completed" and len(expired_once.puts) == 2


def test_uploader_and_control_plane_close_their_connections(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", MiB)
    plane = S3ControlPlane(endpoint_url=moto_bucket.endpoint)
    with Uploader(path, moto_bucket.url("v.mp4"), control=plane, config=CONFIG,
                  state=StateStore(state_dir)) as uploader:
        assert uploader.run().status == "completed"
    with pytest.raises(streamify.SourceError, match="Bad file descriptor"):  # closed too
        uploader.source.read(0, 1)
    client = plane.client
    plane.close()
    assert plane.client is not client  # closed; a later call gets a new client
    assert plane.head(Destination(moto_bucket.name, "v.mp4")) is not None
    plane.close()


class _ClosingCounter(RecordingSender):
    """A real data-path client that counts how often it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_an_injected_sender_is_shared_and_left_open(tmp_path: Path, moto_bucket: Bucket,
                                                     state_dir: str) -> None:
    shared = _ClosingCounter()
    for name in ("a.mp4", "b.mp4"):
        path = make_file(tmp_path / name, 6 * MiB)
        with _uploader(path, moto_bucket, name, state_dir, sender=shared) as uploader:
            assert uploader.run().status == "completed"
    assert shared.closed == 0  # the caller's pool: both uploads used it, neither closed it
    assert {url.path for url in (urllib3.util.parse_url(s.url) for s, _ in shared.puts)} == {
        f"/{moto_bucket.name}/a.mp4", f"/{moto_bucket.name}/b.mp4"}

    own = _ClosingCounter()
    uploader = _uploader(make_file(tmp_path / "c.mp4", MiB), moto_bucket, "c.mp4", state_dir)
    uploader._sender = own  # what the uploader made itself is closed with it
    uploader.close()
    assert own.closed == 1


def test_s3_control_plane_signs_with_the_session_and_client_options_it_is_given(
        moto_bucket: Bucket) -> None:
    session = boto3.Session(aws_access_key_id="AKIDFROMSESSION",
                            aws_secret_access_key="secret-from-session")
    plane = S3ControlPlane(endpoint_url=moto_bucket.endpoint, session=session,
                           client_kwargs={"region_name": "eu-west-3"})
    destination = Destination(moto_bucket.name, "signed.bin")
    upload_id = plane.create_upload(destination, content_type="application/octet-stream",
                                    metadata={}, checksum="none")
    try:
        [signed] = plane.sign_parts(destination, upload_id, [PartToSign(1)], expires_in=60)
    finally:
        plane.abort(destination, upload_id)
        plane.close()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.url).query)
    key_id, _, region, *_ = query["X-Amz-Credential"][0].split("/")
    assert (key_id, region) == ("AKIDFROMSESSION", "eu-west-3")


def test_a_destination_holding_exactly_the_source_is_not_uploaded_again(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB + 3)
    first = streamify.upload(path, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                             part_size="5MiB")
    assert (first.bytes_sent, first.skipped) == (path.stat().st_size, False)
    shutil.rmtree(state_dir, ignore_errors=True)  # another machine: no local state at all

    again = streamify.upload(path, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                             part_size="5MiB")
    assert (again.status, again.skipped, again.bytes_sent) == ("completed", True, 0)
    assert (again.etag, again.parts) == (first.etag, 3)
    recorded = RecordingSender()  # nothing on the wire either
    with _uploader(path, moto_bucket, "v.mp4", state_dir, sender=recorded) as uploader:
        assert uploader.run().skipped
    assert recorded.puts == [] and moto_bucket.open_uploads() == []

    forced = streamify.upload(path, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                              part_size="5MiB", if_exists="overwrite")
    assert (forced.skipped, forced.bytes_sent) == (False, path.stat().st_size)

    other = make_file(tmp_path / "other.mp4", 12 * MiB + 3, seed=7)
    with pytest.raises(streamify.DestinationError, match="already holds a different object"):
        streamify.upload(other, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                         part_size="5MiB", if_exists="refuse_different")
    replaced = streamify.upload(other, moto_bucket.url("v.mp4"),
                                endpoint_url=moto_bucket.endpoint, part_size="5MiB")
    assert (replaced.skipped, replaced.bytes_sent) == (False, other.stat().st_size)
    assert _sha(moto_bucket.read("v.mp4")) == _sha(other.read_bytes())
