import base64
import hashlib
import threading
import time
import zlib

import pytest
import streamify
from streamify import Destination, DestinationError, PartToSign, SignedPart
from streamify._checksum import additional_checksum, composite_etag, md5_base64
from streamify._housekeeping import stale_uploads
from streamify._signing import BatchSigner
from streamify._throttle import Throttle


def test_the_public_surface_is_pinned() -> None:
    assert sorted(streamify.__all__) == streamify.__all__
    for name in streamify.__all__:
        assert hasattr(streamify, name), name
    assert {"upload", "Uploader", "UploadConfig", "S3ControlPlane", "StreamifyError"} <= set(
        streamify.__all__)


def test_every_error_is_a_streamify_error_with_an_exit_code() -> None:
    for name in streamify.__all__:
        obj = getattr(streamify, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, streamify.StreamifyError)
            assert obj.exit_code != 0


def test_destination_parsing() -> None:
    assert Destination.parse("s3://b/videos/a.mp4") == Destination("b", "videos/a.mp4")
    assert Destination.parse("s3://b/videos/").is_prefix
    assert Destination.parse("s3://b").child("x.mp4") == Destination("b", "x.mp4")
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


def test_batch_signer_coalesces_concurrent_requests() -> None:
    batches: list[list[int]] = []

    def sign(parts: object) -> list[SignedPart]:
        numbers = [p.number for p in parts]  # type: ignore[attr-defined]
        batches.append(numbers)
        return [SignedPart(n, f"https://s3/{n}") for n in numbers]

    signer = BatchSigner(sign, linger=0.2, max_batch=8)
    results: dict[int, str] = {}

    def worker(n: int) -> None:
        results[n] = signer.sign(PartToSign(n)).url

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"https://s3/{n}" for n in range(1, 9)}
    assert sum(len(b) for b in batches) == 8
    assert len(batches) < 8


def test_batch_signer_spreads_a_failure_to_every_waiter() -> None:
    def sign(parts: object) -> list[SignedPart]:
        time.sleep(0.01)
        raise streamify.AccessDeniedError("no")

    signer = BatchSigner(sign, linger=0.05)
    with pytest.raises(streamify.AccessDeniedError):
        signer.sign(PartToSign(1))


def test_checksum_algorithm_is_told_by_the_value() -> None:
    from streamify._checksum import checksum_algorithm

    for name in ("crc32", "sha1", "sha256"):
        value = additional_checksum(name, b"video")
        assert value is not None
        assert checksum_algorithm(value) == name
    with pytest.raises(ValueError, match="not a crc32"):
        checksum_algorithm("abc=")
