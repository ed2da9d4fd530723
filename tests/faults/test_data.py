"""Data faults between two runs of one upload: the source changed, the resume state damaged,
the state directory full or read-only, the upload aborted or a part overwritten by someone
else. Every case ends with the object identical to the source as it is now, or with one
clear error that leaves the upload resumable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import streamify
from streamify import (
    HttpControlPlane,
    S3ControlPlane,
    SourceChangedError,
    StateStore,
    StateStoreError,
    TransferError,
    UploadConfig,
    Uploader,
    UploadGoneError,
)

from tests.faults._disk import fill, tmpfs
from tests.faults._stack import TOKEN, Stack, object_sha256, run_upload, sha256_file
from tests.helpers import make_file

MiB = 1024 * 1024
PART = 5 * MiB
# One part at a time, so that a pause after the first part leaves the others to resume.
CONFIG = UploadConfig(part_size=PART, concurrency=1, read_timeout=5.0, backoff_base=0.05,
                      backoff_max=0.2)
SIZE = 4 * PART + 4321


def _run(stack: Stack, path: Path, key: str, state: Path, *, mode: str = "direct",
         pause_after: int | None = None) -> tuple[streamify.UploadResult, list[streamify.Event]]:
    return run_upload(stack, path, key, state, CONFIG, mode=mode, pause_after=pause_after)


def _open_id(stack: Stack, key: str) -> str:
    return stack.open_id(key)


def _paused(stack: Stack, path: Path, key: str, state: Path, mode: str = "direct") -> str:
    result, _ = _run(stack, path, key, state, mode=mode, pause_after=2)
    assert result.status == "paused"
    return _open_id(stack, key)


def _identical(stack: Stack, key: str, path: Path) -> bool:
    return object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


def _rewrite(path: Path, offset: int, data: bytes, *, keep_mtime: bool) -> None:
    stat = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# ---------------------------------------------------------------------- the source changed
def test_source_grown_between_runs_is_refused_and_the_upload_stays_resumable(
        stack: Stack, workdir: Path) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=21)
    key = stack.key("data/grown.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state)
    original = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(b"more")
    with pytest.raises(SourceChangedError, match="changed since") as refused:
        _run(stack, path, key, state)
    assert "\n" not in str(refused.value)
    assert _open_id(stack, key) == upload_id  # nothing mixed, nothing lost
    path.write_bytes(original)
    result, _ = _run(stack, path, key, state)
    assert (result.status, result.upload_id, result.resumed) == ("completed", upload_id, True)
    assert _identical(stack, key, path)


@pytest.mark.parametrize("keep_mtime", [True, False], ids=["mtime kept", "mtime new"])
def test_middle_bytes_changed_in_a_part_s3_holds(
        stack: Stack, workdir: Path, keep_mtime: bool) -> None:
    """The fingerprint hashes only the file's edges, so a change in the middle is caught
    by checking each part S3 holds against the source: with the file's mtime kept, the
    stale part is sent again; with a new mtime, the upload is refused (strict check)."""
    path = make_file(workdir / "v.bin", SIZE, seed=22)
    key = stack.key("data/middle.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state)
    _rewrite(path, PART + 1000, b"edited" * 100, keep_mtime=keep_mtime)  # inside part 2
    if not keep_mtime:
        with pytest.raises(SourceChangedError, match="does not match"):
            _run(stack, path, key, state)
        assert _open_id(stack, key) == upload_id
        return
    result, _ = _run(stack, path, key, state)
    assert (result.status, result.upload_id) == ("completed", upload_id)
    assert result.bytes_resumed == PART  # part 1 kept, part 2 sent again
    assert _identical(stack, key, path)


def test_middle_bytes_changed_in_a_part_not_yet_sent_end_up_in_the_object(
        stack: Stack, workdir: Path) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=23)
    key = stack.key("data/later.bin")
    state = workdir / "state"
    _paused(stack, path, key, state)
    _rewrite(path, 3 * PART + 7, b"edited", keep_mtime=False)  # part 4, not in S3 yet
    result, _ = _run(stack, path, key, state)
    assert result.status == "completed" and result.bytes_resumed == 2 * PART
    assert _identical(stack, key, path)


def test_mtime_only_touched_resumes(stack: Stack, workdir: Path) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=24)
    key = stack.key("data/touched.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    result, _ = _run(stack, path, key, state)
    assert (result.status, result.upload_id, result.bytes_resumed) == (
        "completed", upload_id, 2 * PART)
    assert _identical(stack, key, path)


# ---------------------------------------------------------------------- the resume state
def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _garble(raw: bytes) -> bytes:
    return b"\x00\xff" + raw[::-1]


def _older(raw: bytes) -> bytes:
    document = json.loads(raw)
    for name in ("version", "checksum", "api_url"):
        del document[name]
    return json.dumps(document).encode()


@pytest.mark.parametrize("mode", ["direct", "api"])
@pytest.mark.parametrize("damage", [_truncate, _garble, _older],
                         ids=["truncated", "garbled", "older format"])
def test_a_damaged_or_older_state_still_resumes_the_same_upload(
        stack: Stack, workdir: Path, damage: object, mode: str) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=25)
    key = stack.key(f"data/state-{mode}.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state, mode)
    (document,) = state.glob("*.json")
    document.write_bytes(damage(document.read_bytes()))  # type: ignore[operator]
    result, events = _run(stack, path, key, state, mode=mode)
    assert (result.status, result.upload_id, result.bytes_resumed) == (
        "completed", upload_id, 2 * PART)
    assert any(isinstance(e, streamify.Resumed) for e in events)
    assert _identical(stack, key, path)
    assert list(state.glob("*.json")) == []


# ---------------------------------------------------------------------- the state directory
@pytest.mark.parametrize("mode", ["direct", "api"])
@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_state_directory_fails_before_any_byte(
        stack: Stack, workdir: Path, trouble: str, mode: str) -> None:
    """Decided: without a place for the resume state, nothing starts. A crash would leave
    an upload no later run could tell from a stranger's, so the error comes first, names
    the directory and says what to do."""
    path = make_file(workdir / "v.bin", SIZE, seed=26)
    key = stack.key(f"data/{trouble}-{mode}.bin")
    with tmpfs(workdir / "state", *(["ro"] if trouble == "read-only" else [])) as state:
        if trouble == "full":
            fill(state)
        before = stack.s3.counts()
        with pytest.raises(StateStoreError, match=str(state)) as refused:
            _run(stack, path, key, state, mode=mode)
        assert "\n" not in str(refused.value) and "STREAMIFY_STATE_DIR" in str(refused.value)
        assert (stack.s3.counts() - before).bytes_up == 0  # not a byte, not even a call
        assert stack.open_uploads() == []


# ---------------------------------------------------------------------- someone else's hand
@pytest.mark.parametrize("mode", ["direct", "api"])
def test_an_upload_aborted_by_someone_else_mid_run_fails_once_then_starts_afresh(
        stack: Stack, workdir: Path, mode: str) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=27)
    key = stack.key(f"data/aborted-{mode}.bin")
    state = workdir / "state"
    control = (HttpControlPlane(stack.api_url, token=TOKEN) if mode == "api"
               else S3ControlPlane(endpoint_url=stack.s3.url))
    with Uploader(path, f"s3://{stack.bucket}/{key}", control=control, config=CONFIG,
                  state=StateStore(state)) as uploader:

        def abort_after_first_part(event: streamify.Event) -> None:
            if isinstance(event, streamify.PartDone) and event.number == 1:
                stack.client.abort_multipart_upload(Bucket=stack.bucket, Key=key,
                                                    UploadId=_open_id(stack, key))

        uploader.subscribe(abort_after_first_part)
        # S3 answers NoSuchUpload; moto answers a part of an aborted upload with a bare 500,
        # which is retried until the attempts run out.
        with pytest.raises((UploadGoneError, TransferError)) as gone:
            uploader.run()
    control.close()
    assert "\n" not in str(gone.value) and "rerun" in str(gone.value)
    result, events = _run(stack, path, key, state, mode=mode)
    assert result.status == "completed" and result.restarted
    assert any(isinstance(e, streamify.Restarted) for e in events)
    assert _identical(stack, key, path)
    assert stack.open_uploads() == []


@pytest.mark.parametrize("mode", ["direct", "api"])
def test_a_part_overwritten_behind_our_back_is_sent_again(
        stack: Stack, workdir: Path, mode: str) -> None:
    path = make_file(workdir / "v.bin", SIZE, seed=28)
    key = stack.key(f"data/overwritten-{mode}.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state, mode)
    stack.client.upload_part(Bucket=stack.bucket, Key=key, UploadId=upload_id, PartNumber=1,
                             Body=os.urandom(PART))
    before = stack.s3.counts()
    result, _ = _run(stack, path, key, state, mode=mode)
    assert (result.status, result.upload_id) == ("completed", upload_id)
    assert result.bytes_resumed == PART  # only part 2 was kept
    assert (stack.s3.counts() - before).parts.get((upload_id, 1)) == PART
    assert _identical(stack, key, path)
