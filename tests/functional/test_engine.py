"""The upload engine against moto's S3 server over real HTTP."""

from __future__ import annotations

import random
import threading
import urllib.parse
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
    Uploader,
    UploadGoneError,
)
from streamify._control import PartToSign, SignedPart

from tests.conftest import Bucket
from tests.functional._engine_support import CONFIG, MiB, new_uploader, pause_at, sha
from tests.helpers import RecordingSender, assert_checksums_signed_and_sent, make_file


def test_upload_and_verify(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 23 * MiB + 7)
    result = streamify.upload(path, moto_bucket.url("v.mp4"), endpoint_url=moto_bucket.endpoint,
                              part_size="5MiB")
    assert result.status == "completed"
    assert result.parts == 5
    assert result.etag.endswith("-5")
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())
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
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.4)
    paused = first.run()
    assert paused.status == "paused"
    assert len(moto_bucket.open_uploads()) == 1
    sent_before = paused.bytes_sent

    events: list[streamify.Event] = []
    second = new_uploader(path, moto_bucket, "v.mp4", state_dir)
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
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


def test_resume_without_local_state_finds_the_upload_by_listing(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.5)
    first.run()
    other_machine = str(tmp_path / "elsewhere")
    events: list[streamify.Event] = []
    second = new_uploader(path, moto_bucket, "v.mp4", other_machine,
                          config=CONFIG.replace(part_size=16 * MiB))  # plan is read back from S3
    second.subscribe(events.append)
    result = second.run()
    assert result.resumed and result.bytes_resumed > 0
    assert [e.found_by for e in events if isinstance(e, streamify.Resumed)] == ["listing"]
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


def test_cancel_aborts_the_upload_and_forgets_it(tmp_path: Path, moto_bucket: Bucket,
                                                 state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    uploader = new_uploader(path, moto_bucket, "v.mp4", state_dir)
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
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.5)
    first.run()
    make_file(path, 30 * MiB, seed=9)
    with pytest.raises(SourceChangedError, match=r"v\.mp4.*streamify abort"):
        new_uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert len(moto_bucket.open_uploads()) == 1
    with pytest.raises(SourceChangedError, match="does not match"):
        new_uploader(path, moto_bucket, "v.mp4", str(tmp_path / "no-state")).run()
    assert len(moto_bucket.open_uploads()) == 1


@pytest.mark.parametrize("policy", ["restart", "fail"])
def test_upload_aborted_behind_our_back(tmp_path: Path, moto_bucket: Bucket, state_dir: str,
                                        policy: str) -> None:
    path = make_file(tmp_path / "v.mp4", 20 * MiB)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.3)
    paused = first.run()
    moto_bucket.client.abort_multipart_upload(Bucket=moto_bucket.name, Key="v.mp4",
                                              UploadId=paused.upload_id)
    again = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(on_upload_gone=policy))
    if policy == "fail":
        with pytest.raises(UploadGoneError, match="aborted or expired"):
            again.run()
        # The stale hint is gone, so the next run starts afresh.
        assert new_uploader(path, moto_bucket, "v.mp4", state_dir).run().status == "completed"
    else:
        result = again.run()
        assert result.restarted and result.upload_id != paused.upload_id
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


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
    uploader = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                            config=CONFIG.replace(backoff_base=0.01), sender=FlakySender())
    events: list[streamify.Event] = []
    uploader.subscribe(events.append)
    result = uploader.run()
    retries = [e for e in events if isinstance(e, streamify.Retrying)]
    assert len(retries) == result.parts == 3
    assert all("connection reset" in e.reason for e in retries)
    progress = [e.bytes_done for e in events if isinstance(e, Progress)]
    assert max(progress) == progress[-1] == path.stat().st_size
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


def test_retries_are_bounded(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    class DeadLink(PartSender):
        def put(self, signed: SignedPart, body: bytes, on_progress=None) -> str:  # type: ignore[no-untyped-def]
            raise urllib3.exceptions.ProtocolError("connection reset by peer")

    path = make_file(tmp_path / "v.mp4", 6 * MiB)
    uploader = new_uploader(path, moto_bucket, "v.mp4", state_dir,
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
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir, sender=sender,
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
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                          config=CONFIG.replace(bwlimit=4 * MiB)).run()
    assert result.seconds >= 1.5


def test_a_run_that_died_after_completing_is_not_uploaded_again(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    store = StateStore(state_dir)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(concurrency=1))
    def pause_on_part_done(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone):
            first.pause()

    first.subscribe(pause_on_part_done)
    paused = first.run()
    assert paused.status == "paused"
    saved = store.all()[0]
    assert new_uploader(path, moto_bucket, "v.mp4", state_dir).run().status == "completed"
    store.save(saved)  # as if the process died between completing and forgetting the upload
    again = new_uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert again.status == "completed"
    assert again.bytes_sent == 0 and again.upload_id == paused.upload_id
    assert store.all() == []


def test_a_touched_but_unchanged_file_still_resumes(tmp_path: Path, moto_bucket: Bucket,
                                                    state_dir: str) -> None:
    import os

    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir)
    pause_at(first, 0.5)
    first.run()
    os.utime(path, (1e9, 1e9))  # same bytes, new modification time (touch, cp, rsync...)
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir).run()
    assert result.resumed and result.bytes_resumed > 0
    assert sha(moto_bucket.read("v.mp4")) == sha(path.read_bytes())


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
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                          config=UploadConfig(part_size=8 * MiB)).run()
    assert result.status == "completed" and result.resumed and result.upload_id == upload_id
    assert (result.bytes_resumed, result.bytes_sent) == (6 * MiB, 16 * MiB)
    assert sha(moto_bucket.read("v.mp4")) == sha(data)


def test_resume_uses_the_checksum_the_upload_was_started_with(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 30 * MiB)
    first = new_uploader(path, moto_bucket, "v.mp4", state_dir,
                         config=CONFIG.replace(checksum="sha256"))
    pause_at(first, 0.3)
    assert first.run().status == "paused"
    sender = RecordingSender()
    result = new_uploader(path, moto_bucket, "v.mp4", state_dir, sender=sender).run()  # no checksum
    assert result.status == "completed" and result.bytes_sent > 0
    assert_checksums_signed_and_sent(sender.puts, "sha256")
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="v.mp4",
                                          ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256")


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
        with new_uploader(path, moto_bucket, name, state_dir, sender=shared) as uploader:
            assert uploader.run().status == "completed"
    assert shared.closed == 0  # the caller's pool: both uploads used it, neither closed it
    assert {url.path for url in (urllib3.util.parse_url(s.url) for s, _ in shared.puts)} == {
        f"/{moto_bucket.name}/a.mp4", f"/{moto_bucket.name}/b.mp4"}

    own = _ClosingCounter()
    uploader = new_uploader(make_file(tmp_path / "c.mp4", MiB), moto_bucket, "c.mp4", state_dir)
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
