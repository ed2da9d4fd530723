"""Corrupt answers from S3 on the control path: a listing that names a part with another
size or ETag than S3 holds, a completion answered 200 with an ``<Error>`` in its body, a
listing cut short in the middle of its XML. The wire proxy in front of S3 rewrites the
answer (``WireProxy.rewrite_responses``); S3 itself holds the truth. Each lie is caught,
never trusted: the object ends up byte-identical to the source, or absent with an error
that says what happened, and no part S3 holds is lost."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import streamify
from streamify import StreamifyError, UploadConfig

from tests.faults._stack import Stack, object_sha256, run_upload, sha256_file
from tests.helpers import make_file

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 3 * PART + 777
CONFIG = UploadConfig(part_size=PART, concurrency=1, read_timeout=5.0, backoff_base=0.05,
                      backoff_max=0.2)


def _run(stack: Stack, path: Path, key: str, state: Path, *, mode: str = "direct",
         pause_after: int | None = None) -> tuple[streamify.UploadResult, list[streamify.Event]]:
    return run_upload(stack, path, key, state, CONFIG, mode=mode, pause_after=pause_after)


def _paused(stack: Stack, path: Path, key: str, state: Path, mode: str) -> str:
    """The id of the upload left open by a run paused after two parts."""
    result, _ = _run(stack, path, key, state, mode=mode, pause_after=2)
    assert result.status == "paused"
    return stack.open_id(key)


def _list_parts(method: str, target: str) -> bool:
    return method == "GET" and "uploadId=" in target and "partNumber=" not in target


def _complete(method: str, target: str) -> bool:
    return method == "POST" and "uploadId=" in target


def _list_uploads(method: str, target: str) -> bool:
    return method == "GET" and "uploads" in target.split("?", 1)[-1].split("&")


def _first_part(field: str, value: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A rewrite of a ListParts answer: part 1's ``field`` becomes ``value(old)``."""

    def rewrite(body: bytes) -> bytes:
        part = re.search(rb"<Part>.*?</Part>", body, re.S)
        assert part is not None, body[:300]
        old = re.search(rb"<%s>(.*?)</%s>" % (field.encode(), field.encode()), part.group(0))
        assert old is not None, part.group(0)
        new_part = part.group(0).replace(old.group(0), b"<%s>%s</%s>" % (
            field.encode(), value(old.group(1)), field.encode()))
        return body.replace(part.group(0), new_part, 1)

    return rewrite


def _error_body(body: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message></Error>")


def _cut_in_half(body: bytes) -> bytes:
    return body[: len(body) // 2]


LISTING_LIES: dict[str, Callable[[bytes], bytes]] = {
    "part 1 listed 1 byte short": _first_part("Size", lambda old: b"%d" % (int(old) - 1)),
    "part 1 listed with another ETag": _first_part(
        "ETag", lambda old: old.replace(old[1:9], b"0badbeef")),
}


@pytest.mark.parametrize("lie", list(LISTING_LIES))
def test_a_listed_part_with_the_wrong_size_or_etag_is_sent_again_not_kept(
        mode_stack: tuple[Stack, str], workdir: Path, lie: str) -> None:
    stack, mode = mode_stack
    path = make_file(workdir / "v.bin", SIZE, seed=41)
    key = stack.key(f"corrupt/listed-{mode}.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state, mode)
    stack.s3.rewrite_responses(LISTING_LIES[lie], match=_list_parts)
    before = stack.s3.counts()

    result, _ = _run(stack, path, key, state, mode=mode)

    assert stack.s3.faults["rewrite"] == 1 and stack.s3.pending() == 0
    assert (result.status, result.upload_id) == ("completed", upload_id)
    sent = (stack.s3.counts() - before).parts
    assert sent.get((upload_id, 1)) == PART, sent  # the part the listing lied about
    assert (upload_id, 2) not in sent, sent  # the part listed truly is kept
    assert result.bytes_resumed == PART
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


def test_a_completion_answered_200_with_an_error_is_checked_against_the_object(
        mode_stack: tuple[Stack, str], workdir: Path) -> None:
    """S3 may answer CompleteMultipartUpload 200 and report a failure in the body. Here it
    completed the object and only the answer says otherwise: the error is not taken for
    success nor for the end, the completion is asked again (S3 answers a repeat of a done
    completion with success, or with NoSuchUpload, then the object is compared with the
    parts), and the object read back is the one these parts make."""
    stack, mode = mode_stack
    path = make_file(workdir / "v.bin", SIZE, seed=42)
    key = stack.key(f"corrupt/complete-{mode}.bin")
    stack.s3.rewrite_responses(_error_body, match=_complete)

    result, events = _run(stack, path, key, workdir / "state", mode=mode)

    assert stack.s3.faults["rewrite"] == 1 and stack.s3.pending() == 0
    assert result.status == "completed"
    said = "InternalError" if mode == "direct" else "completing upload"
    assert any(isinstance(e, streamify.Retrying) and said in e.reason for e in events), [
        e for e in events if isinstance(e, streamify.Retrying)]
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
    assert stack.open_uploads() == []


def test_a_completion_error_in_a_200_is_not_taken_for_a_completed_object(
        mode_stack: tuple[Stack, str], workdir: Path) -> None:
    """Every completion answered 200 with an error: the run never reports an object that
    is not there; it stops, says what storage answered, and the upload stays resumable."""
    stack, mode = mode_stack
    path = make_file(workdir / "v.bin", SIZE, seed=43)
    key = stack.key(f"corrupt/never-{mode}.bin")
    stack.s3.fail_requests(200, "InternalError", count=1000, match=_complete)
    said = "InternalError" if mode == "direct" else "busy or unavailable"
    with pytest.raises(StreamifyError, match=said) as failed:
        _run(stack, path, key, workdir / "state", mode=mode)
    stack.s3.disarm()
    assert "\n" not in str(failed.value) and "rerun" in str(failed.value)
    listed = stack.client.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    assert listed == []
    upload_id = stack.open_id(key)
    before = stack.s3.counts()
    result, _ = _run(stack, path, key, workdir / "state", mode=mode)
    assert (result.status, result.upload_id) == ("completed", upload_id)
    assert (stack.s3.counts() - before).part_bytes == 0  # no part sent twice
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


@pytest.mark.parametrize("call", ["ListParts", "ListMultipartUploads"])
def test_a_listing_cut_short_in_its_xml_is_never_read_as_fewer_parts(
        mode_stack: tuple[Stack, str], workdir: Path, call: str) -> None:
    """A listing whose XML ends halfway (its length made to fit, so only the XML tells)
    is an answer that failed, not a shorter list: it is asked again, and the parts S3
    holds are kept."""
    stack, mode = mode_stack
    path = make_file(workdir / "v.bin", SIZE, seed=44)
    key = stack.key(f"corrupt/cut-{call}-{mode}.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state, mode)
    if call == "ListMultipartUploads":  # no state: the upload is found by listing
        for document in state.glob("*.json"):
            document.unlink()
    stack.s3.rewrite_responses(_cut_in_half,
                               match=_list_parts if call == "ListParts" else _list_uploads)
    before = stack.s3.counts()

    result, _ = _run(stack, path, key, state, mode=mode)

    assert stack.s3.faults["rewrite"] == 1 and stack.s3.pending() == 0
    assert (result.status, result.upload_id) == ("completed", upload_id)
    assert result.bytes_resumed == 2 * PART
    sent = (stack.s3.counts() - before).parts
    assert set(sent) == {(upload_id, 3), (upload_id, 4)}, sent
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


def _more_follow(body: bytes) -> bytes:
    return body.replace(b"<IsTruncated>false</IsTruncated>", b"<IsTruncated>true</IsTruncated>")


def test_a_part_listing_that_always_says_more_follow_ends_instead_of_looping(
        mode_stack: tuple[Stack, str], workdir: Path) -> None:
    """Every page of ListParts says more parts follow and names none past the last: the
    listing is not followed round in circles; the run fails within its retry budget with
    a line saying what S3 answered, and the upload it found stays whole for a rerun."""
    stack, mode = mode_stack
    path = make_file(workdir / "v.bin", SIZE, seed=45)
    key = stack.key(f"corrupt/more-{mode}.bin")
    state = workdir / "state"
    upload_id = _paused(stack, path, key, state, mode)
    stack.s3.rewrite_responses(_more_follow, count=10_000, match=_list_parts)
    said = "more parts follow" if mode == "direct" else "busy or unavailable"
    with pytest.raises(StreamifyError, match=said) as failed:
        _run(stack, path, key, state, mode=mode)
    stack.s3.disarm()
    assert "\n" not in str(failed.value) and "rerun" in str(failed.value)
    assert stack.s3.faults["rewrite"] <= 2 * CONFIG.max_attempts  # two pages per attempt
    before = stack.s3.counts()
    result, _ = _run(stack, path, key, state, mode=mode)
    assert (result.status, result.upload_id, result.bytes_resumed) == (
        "completed", upload_id, 2 * PART)
    assert set((stack.s3.counts() - before).parts) == {(upload_id, 3), (upload_id, 4)}
    assert object_sha256(stack.client, stack.bucket, key) == sha256_file(path)
