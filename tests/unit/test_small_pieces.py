import base64
import functools
import hashlib
import threading
import zlib
from collections.abc import Callable, Sequence

import pytest
import streamify
from streamify import Destination, DestinationError, PartToSign, SignedPart
from streamify._checksum import additional_checksum, composite_etag, md5_base64
from streamify._housekeeping import stale_uploads
from streamify._signing import BatchSigner
from streamify._throttle import Throttle

from tests.threads import start_and_wait_until_it_waits

PUBLIC = [
    "AccessDeniedError", "BatchFile", "BatchOutcome", "Completed", "ConfigError",
    "ControlPlane", "Destination", "FileOutcome", "MemoryBudget", "UploadBatch",
    "DestinationError", "DestinationExistsError", "EndpointError", "Event", "Failed",
    "Fingerprint", "FsspecSource",
    "HttpControlPlane", "IntegrityError", "LocalFileSource", "ObjectInfo", "OpenUpload", "Part",
    "PartDone", "PartPlan", "PartSender", "PartToSign", "Paused", "Progress", "Restarted",
    "ResumeState", "Resumed", "Retrying", "S3ControlPlane", "SignedPart", "Source",
    "SourceChangedError", "SourceError", "Started", "StateStore", "StateStoreError",
    "StreamWriter", "StreamedFile", "StreamifyError", "StreamifyFileSystem", "TransferError",
    "UploadCancelledError", "UploadConfig", "UploadGoneError", "UploadResult", "UploadedPart",
    "Uploader", "Verifying", "__version__", "apply_bucket_rules", "collect_stale_uploads",
    "open_source", "parse_size", "plan_parts", "upload", "upload_stream",
    # The resume decision for a file another program reads (the notebook's browser page),
    # and the completion every front end checks the object by.
    "Create", "ListedFacts", "NeedHashes", "RangeHashes", "Refuse", "Resume",
    "complete_upload", "decide_listed",
    # Control calls that ride out outages under the one budget, for front ends that make
    # their own calls (the notebook's browser widget).
    "retrying",
    # A file's content type from its leading bytes (the Airflow operator's default), and
    # the name a source's key gets under a prefix.
    "content_type_of", "file_name",
    # Video facts for ingestion (the video extra).
    "NotAVideoError", "VideoFacts", "probe_video",
]


def test_the_public_surface_is_pinned() -> None:
    # Adding or removing a public name is a decision: make it here too.
    assert streamify.__all__ == sorted(PUBLIC)
    for name in streamify.__all__:
        assert getattr(streamify, name) is not None, name


def test_every_error_is_a_streamify_error_with_an_exit_code() -> None:
    for name in streamify.__all__:
        obj = getattr(streamify, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, streamify.StreamifyError)
            assert obj.exit_code != 0


def test_destination_parsing() -> None:
    assert Destination.parse("s3://bkt/videos/a.mp4") == Destination("bkt", "videos/a.mp4")
    assert Destination.parse("s3://bkt/videos/").is_prefix
    assert Destination.parse("s3://bkt").child("x.mp4") == Destination("bkt", "x.mp4")
    for bad in ("b/key", "s3:///key", "https://b/key"):
        with pytest.raises(DestinationError, match="s3://bucket/key"):
            Destination.parse(bad)


def test_composite_etag_matches_s3s_rule() -> None:
    parts = [b"a" * 10, b"b" * 5]
    md5s = [hashlib.md5(p).hexdigest() for p in parts]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert composite_etag(md5s) == f"{expected}-2"
    assert composite_etag([f'"{md5s[0]}"']) == hashlib.md5(
        hashlib.md5(parts[0]).digest()).hexdigest() + "-1"


def test_checksums() -> None:
    data = b"streamify"
    assert md5_base64(data) == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert additional_checksum("none", data) is None
    assert additional_checksum("crc32", data) == base64.b64encode(
        zlib.crc32(data).to_bytes(4, "big")).decode()
    assert additional_checksum("sha256", data) == base64.b64encode(
        hashlib.sha256(data).digest()).decode()


def test_stale_upload_selection() -> None:
    dest = Destination("b", "k")
    uploads = [streamify.OpenUpload(dest, "old-ours", 0), streamify.OpenUpload(dest, "old", 0),
               streamify.OpenUpload(dest, "new-ours", 990)]
    assert [u.upload_id for u in stale_uploads(uploads, older_than=100, now=1000,
                                                ours={"old-ours", "new-ours"})] == ["old-ours"]
    assert len(stale_uploads(uploads, older_than=100, now=1000, ours=None)) == 2


def test_throttle_holds_the_rate() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    throttle = Throttle(1000, clock=lambda: clock[0], sleep=sleep)
    for _ in range(10):
        throttle.take(500)
    # 5,000 bytes at 1,000 B/s with a 1,000-byte burst: 4 seconds of waiting.
    assert sum(slept) == pytest.approx(4.0)


def _sign_from_threads(signer: BatchSigner, count: int, *,
                       then: Callable[[], object] = lambda: None) -> dict[int, object]:
    """Ask ``signer`` for parts 1..count from as many threads, arriving in that order, call
    ``then`` once all of them are in; each gets a URL or an error."""
    outcomes: dict[int, object] = {}

    def worker(n: int) -> None:
        try:
            outcomes[n] = signer.sign(PartToSign(n)).url
        except Exception as exc:
            outcomes[n] = exc

    threads = [start_and_wait_until_it_waits(functools.partial(worker, n))
               for n in range(1, count + 1)]
    then()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a waiter was left hanging"
    return outcomes


def test_batch_signer_first_call_lingers_until_the_batch_is_full() -> None:
    batches: list[list[int]] = []

    def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
        batches.append([p.number for p in parts])
        return [SignedPart(p.number, f"https://s3/{p.number}") for p in parts]

    # A minute's linger: the call goes as soon as the batch is full, not after it.
    outcomes = _sign_from_threads(BatchSigner(sign, linger=60, max_batch=8), 8)
    assert outcomes == {n: f"https://s3/{n}" for n in range(1, 9)}
    assert batches == [[1, 2, 3, 4, 5, 6, 7, 8]]


def test_batch_signer_groups_what_arrives_during_a_call_and_adds_no_wait() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
        batches.append([p.number for p in parts])
        if len(batches) == 1:
            assert release.wait(30)
        return [SignedPart(p.number, f"https://s3/{p.number}") for p in parts]

    # A minute's linger: a call that waited for company would outlast every join.
    outcomes = _sign_from_threads(BatchSigner(sign, linger=60, max_batch=2), 5,
                                  then=release.set)
    assert outcomes == {n: f"https://s3/{n}" for n in range(1, 6)}
    # The three that came during the first call went in the next calls, at most two
    # each, the last one alone and at once.
    assert batches == [[1, 2], [3, 4], [5]]


def test_batch_signer_spreads_a_failure_to_every_waiter() -> None:
    calls: list[int] = []
    release = threading.Event()

    def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
        calls.append(len(parts))
        assert release.wait(30)
        raise streamify.AccessDeniedError("no")

    outcomes = _sign_from_threads(BatchSigner(sign, linger=0.2, max_batch=3), 6,
                                  then=release.set)
    assert sorted(outcomes) == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(o, streamify.AccessDeniedError) for o in outcomes.values())
    # Each failed call handed the lead to a waiter, which signed the next batch.
    assert sum(calls) == 6 and all(c <= 3 for c in calls) and len(calls) >= 2


@pytest.mark.parametrize("linger", [0.0, 0.2])
def test_batch_signer_fails_every_waiter_when_urls_are_missing(linger: float) -> None:
    def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
        return [SignedPart(p.number, f"https://s3/{p.number}") for p in parts][:-1]

    outcomes = _sign_from_threads(BatchSigner(sign, linger=linger, max_batch=8), 4)
    assert sorted(outcomes) == [1, 2, 3, 4]
    for outcome in outcomes.values():
        assert isinstance(outcome, streamify.StreamifyError)
        assert "signed URLs" in str(outcome)


def test_checksum_algorithm_is_told_by_the_value() -> None:
    from streamify._checksum import checksum_algorithm

    for name in ("crc32", "sha1", "sha256"):
        value = additional_checksum(name, b"video")
        assert value is not None
        assert checksum_algorithm(value) == name
    with pytest.raises(ValueError, match="not a crc32"):
        checksum_algorithm("abc=")
