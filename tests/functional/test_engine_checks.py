"""The upload engine when what it is told cannot be trusted as it is: part ETags that are
not MD5s, parts to verify before resuming, a failure after a pause, a subscriber that
raises, a control plane that answers too few URLs, a part refused for good."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import streamify
from streamify import (
    Destination,
    PartSender,
    Progress,
    S3ControlPlane,
    StateStore,
    UploadCancelledError,
    UploadedPart,
    Uploader,
)
from streamify._control import SignedPart
from streamify._retry import PartRejected

from tests.conftest import Bucket
from tests.functional._engine_support import CONFIG, UPLOADERS, MiB, new_uploader, pause_at, sha
from tests.helpers import RecordingSender, make_file


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
        return UPLOADERS.enter_context(Uploader(
            path, moto_bucket.url("v.mp4"), config=config, sender=sender,
            control=OpaqueETagControl(moto_bucket.endpoint, real), state=StateStore(state_dir)))

    first = uploader(OpaqueETagSender(real))
    pause_at(first, 0.5)
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
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


def test_verifying_the_parts_s3_holds_is_reported_and_can_be_paused_or_cancelled(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 40 * MiB)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(concurrency=1))
    pause_at(first, 0.6)
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

    second = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                          config=CONFIG.replace(concurrency=1))
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
    late = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                        config=CONFIG.replace(concurrency=1, deadline=1.0))
    stop_while_verifying(late, lambda: time.sleep(1.1))
    with pytest.raises(streamify.TransferError, match="deadline"):
        late.run()
    assert len(moto_bucket.open_uploads()) == 1

    third = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(concurrency=1))
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

    uploader = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                            config=CONFIG.replace(concurrency=2),
                            sender=RefusedAfterPause(pool_size=2))
    with pytest.raises(streamify.TransferError, match=r"part 1 .* refused"):
        uploader.run()


def test_cancel_before_run_sends_nothing_and_aborts_the_open_upload(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    fresh = new_uploader(path, moto_bucket, "v.mp4", state_dir, sender=RecordingSender())
    fresh.cancel()
    with pytest.raises(UploadCancelledError):
        fresh.run()
    assert moto_bucket.open_uploads() == [] and fresh._sender.puts == []  # type: ignore[attr-defined]

    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.3)
    assert first.run().status == "paused"
    first.cancel()  # a paused upload the user gives up on
    with pytest.raises(UploadCancelledError):
        first.run()
    assert moto_bucket.open_uploads() == [] and StateStore(state_dir).all() == []


def test_a_subscriber_that_raises_is_logged_and_the_upload_goes_on(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str,
        caplog: pytest.LogCaptureFixture) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    uploader = new_uploader(path, moto_bucket, "v.mp4", state_dir)
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
    uploader = UPLOADERS.enter_context(Uploader(
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
    with new_uploader(path, moto_bucket, "v.mp4", state_dir, config=config,
                      sender=denied) as uploader, pytest.raises(streamify.AccessDeniedError) as err:
        uploader.run()
    assert err.value.exit_code == 6 and "freshly signed URL" in str(err.value)
    assert len(denied.puts) == 2  # the first URL, then one freshly signed

    expired_once = DeniedSender(expired=1)  # an expired URL: signed again, then it works
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir, config=config,
                          sender=expired_once).run()
    assert result.status == "completed" and len(expired_once.puts) == 2


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
    with new_uploader(path, moto_bucket, "v.mp4", state_dir, sender=recorded) as uploader:
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
    assert sha(moto_bucket.read("v.mp4")) == sha(other.read_bytes())
