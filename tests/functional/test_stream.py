"""Streams of unknown size against moto's S3 server over real HTTP."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import streamify
import urllib3
from streamify import (
    PartSender,
    Progress,
    S3ControlPlane,
    StreamWriter,
    UploadConfig,
)
from streamify._control import SignedPart

from tests.conftest import Bucket
from tests.helpers import RecordingSender, assert_checksums_signed_and_sent, make_file
from tests.wireproxy import WireProxy

MiB = 1024 * 1024
CONFIG = UploadConfig(part_size=5 * MiB, concurrency=3)


def _chunks(total: int, seed: int = 0) -> Iterator[bytes]:
    """``total`` pseudo-random bytes in chunks of awkward sizes (never a part's size)."""
    rng = random.Random(seed)
    sent = 0
    while sent < total:
        size = min(total - sent, rng.randint(1, 3 * MiB))
        yield rng.randbytes(size)
        sent += size


def _writer(bucket: Bucket, key: str, config: UploadConfig = CONFIG,
            sender: PartSender | None = None) -> StreamWriter:
    return StreamWriter(bucket.url(key), control=S3ControlPlane(endpoint_url=bucket.endpoint),
                        config=config, sender=sender)


def test_a_40_mib_generator_arrives_whole(moto_bucket: Bucket) -> None:
    expected = hashlib.sha256(b"".join(_chunks(40 * MiB))).hexdigest()
    events: list[streamify.Event] = []
    result = streamify.upload_stream(_chunks(40 * MiB), moto_bucket.url("live.ts"),
                                     endpoint_url=moto_bucket.endpoint, part_size="5MiB",
                                     concurrency=3, on_event=events.append)
    assert (result.status, result.size, result.parts) == ("completed", 40 * MiB, 8)
    assert result.etag.endswith("-8") and result.bytes_sent == 40 * MiB
    assert hashlib.sha256(moto_bucket.read("live.ts")).hexdigest() == expected
    assert moto_bucket.open_uploads() == []
    assert sorted(e.number for e in events if isinstance(e, streamify.PartDone)) == list(
        range(1, 9))
    assert isinstance(events[-1], streamify.Completed)


def test_upload_takes_binary_file_objects_and_pipes(tmp_path: Path, moto_bucket: Bucket) -> None:
    data = random.Random(1).randbytes(7 * MiB + 3)
    result = streamify.upload(io.BytesIO(data), moto_bucket.url("a.bin"),
                              endpoint_url=moto_bucket.endpoint, part_size="5MiB")
    assert result.parts == 2 and moto_bucket.read("a.bin") == data

    path = make_file(tmp_path / "piped.bin", 12 * MiB + 1)
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as cat:
        assert cat.stdout is not None
        piped = streamify.upload(cat.stdout, moto_bucket.url("piped.bin"),
                                 endpoint_url=moto_bucket.endpoint, part_size="5MiB")
    assert piped.parts == 3 and moto_bucket.read("piped.bin") == path.read_bytes()


def test_an_empty_stream_makes_an_empty_object(moto_bucket: Bucket) -> None:
    with _writer(moto_bucket, "empty") as writer:
        writer.write(b"")
    result = writer.close()
    assert (result.size, result.parts) == (0, 1)
    assert moto_bucket.read("empty") == b""


def test_an_exception_inside_with_aborts_and_leaves_nothing(moto_bucket: Bucket) -> None:
    sender = RecordingSender()
    writer = _writer(moto_bucket, "broken.ts", sender=sender)

    def encode() -> None:
        with writer:
            for chunk in _chunks(12 * MiB):
                writer.write(chunk)
            deadline = time.monotonic() + 30
            while len(sender.puts) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # let the two full parts reach S3 first
            raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        encode()
    assert len(sender.puts) >= 2  # parts had gone out before the failure
    assert moto_bucket.open_uploads() == []
    assert moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name).get("KeyCount") == 0
    with pytest.raises(ValueError, match="closed or aborted"):
        writer.write(b"more")


class GatedSender(PartSender):
    """Holds every PUT until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(pool_size=4)
        self.gate = threading.Event()

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        self.gate.wait(30)
        return super().put(signed, body, on_progress)


def test_write_blocks_while_concurrency_parts_are_in_flight(moto_bucket: Bucket) -> None:
    sender = GatedSender()
    writer = _writer(moto_bucket, "bounded.ts", config=CONFIG.replace(concurrency=2),
                     sender=sender)
    accepted: list[int] = []

    def produce() -> None:
        for _ in range(8):
            accepted.append(writer.write(bytes(5 * MiB)))

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    deadline = time.monotonic() + 30
    while sum(accepted) < 2 * 5 * MiB and time.monotonic() < deadline:
        time.sleep(0.05)
    producer.join(timeout=1)
    # Two parts in flight, the third full and waiting for a slot: no more is taken in.
    assert producer.is_alive() and sum(accepted) == 2 * 5 * MiB
    sender.gate.set()
    producer.join(timeout=60)
    assert not producer.is_alive() and sum(accepted) == 40 * MiB
    assert writer.close().parts == 8
    assert moto_bucket.read("bounded.ts") == bytes(40 * MiB)


class FlakySender(PartSender):
    """Drops the connection half-way through the first attempt of every part."""

    def __init__(self) -> None:
        super().__init__(pool_size=4)
        self.failed: set[int] = set()
        self.lock = threading.Lock()

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        with self.lock:
            first = signed.number not in self.failed
            self.failed.add(signed.number)
        if first:
            if on_progress:
                on_progress(len(body) // 2)
            raise urllib3.exceptions.ProtocolError("connection reset by peer")
        return super().put(signed, body, on_progress)


def test_parts_are_retried_without_double_counting(moto_bucket: Bucket) -> None:
    data = random.Random(2).randbytes(12 * MiB)
    writer = _writer(moto_bucket, "flaky.ts", config=CONFIG.replace(backoff_base=0.01),
                     sender=FlakySender())
    events: list[streamify.Event] = []
    writer.subscribe(events.append)
    with writer:
        writer.write(data)
    result = writer.close()
    assert len([e for e in events if isinstance(e, streamify.Retrying)]) == result.parts == 3
    assert max(e.bytes_done for e in events if isinstance(e, Progress)) == len(data)
    assert moto_bucket.read("flaky.ts") == data


def test_a_part_that_cannot_be_sent_fails_the_stream_and_aborts(moto_bucket: Bucket) -> None:
    class DeadLink(PartSender):
        def put(self, signed: SignedPart, body: bytes,
                on_progress: Callable[[int], None] | None = None) -> str:
            raise urllib3.exceptions.ProtocolError("connection reset by peer")

    writer = _writer(moto_bucket, "dead.ts",
                     config=CONFIG.replace(backoff_base=0.001, max_attempts=2),
                     sender=DeadLink(pool_size=1))
    # Every part fails; which one is reported first depends on the workers' timing.
    with pytest.raises(streamify.TransferError, match=r"part \d+ of the stream"):
        streamify._stream.write_stream(writer, _chunks(30 * MiB))
    assert moto_bucket.open_uploads() == []


def test_parts_grow_as_the_schedule_says(moto_bucket: Bucket,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The schedule is unit-tested up to 5 TiB; here the writer follows it, doubling every
    # two parts instead of every 900 so that a few MiB show it.
    from streamify import _plan

    monkeypatch.setattr(_plan, "STREAM_DOUBLING", 2)
    data = random.Random(3).randbytes(40 * MiB)
    sender = RecordingSender()
    with _writer(moto_bucket, "growing.ts", sender=sender) as writer:
        for chunk in _chunks(40 * MiB, seed=3):
            writer.write(chunk)
    sizes = [len(body) for _, body in sorted(sender.puts, key=lambda put: put[0].number)]
    assert sizes == [5 * MiB, 5 * MiB, 10 * MiB, 10 * MiB, 10 * MiB]
    assert moto_bucket.read("growing.ts") == b"".join(_chunks(40 * MiB, seed=3)) != data


def test_a_stream_carries_its_additional_checksum(moto_bucket: Bucket) -> None:
    sender = RecordingSender()
    with _writer(moto_bucket, "summed.ts", config=CONFIG.replace(checksum="sha256"),
                 sender=sender) as writer:
        for chunk in _chunks(11 * MiB, seed=4):
            writer.write(chunk)
    assert writer.close().parts == 3
    assert_checksums_signed_and_sent(sender.puts, "sha256")


def _write_all(writer: StreamWriter, chunks: Iterable[bytes]) -> None:
    with writer:
        for chunk in chunks:
            writer.write(chunk)


def _starts(method: str, target: str) -> bool:
    return method == "POST" and target.endswith("?uploads")


def test_a_start_whose_answer_is_lost_leaves_no_upload_open(
        moto_bucket: Bucket, moto_proxy: WireProxy) -> None:
    """Storage starts the upload but its answer never arrives: the start is not repeated
    (a second upload would be left open), the one it started is aborted, and the error
    says to write the stream again rather than to rerun and resume."""
    moto_proxy.stall_responses(0.2, match=_starts)
    writer = StreamWriter(moto_bucket.url("lost.ts"),
                          control=S3ControlPlane(endpoint_url=moto_proxy.url), config=CONFIG)
    with pytest.raises(streamify.EndpointError) as caught:
        _write_all(writer, _chunks(12 * MiB))
    message = str(caught.value)
    assert "could not start" in message and "was aborted" in message, message
    assert "write it again" in message and "resume" not in message, message
    assert sum(_starts(*request) for request in moto_proxy.requests) == 1
    assert moto_bucket.open_uploads() == []


def test_a_lost_start_aborts_none_of_the_key_s_uploads_that_hold_parts(
        moto_bucket: Bucket, moto_proxy: WireProxy) -> None:
    """Another writer's upload of the same key, with a part already, is left alone."""
    other = moto_bucket.client.create_multipart_upload(Bucket=moto_bucket.name,
                                                       Key="lost.ts")["UploadId"]
    moto_bucket.client.upload_part(Bucket=moto_bucket.name, Key="lost.ts", UploadId=other,
                                   PartNumber=1, Body=b"x" * 10)
    moto_proxy.stall_responses(0.2, match=_starts)
    writer = StreamWriter(moto_bucket.url("lost.ts"),
                          control=S3ControlPlane(endpoint_url=moto_proxy.url), config=CONFIG)
    with pytest.raises(streamify.EndpointError):
        _write_all(writer, [b"y" * (6 * MiB)])
    assert [u["UploadId"] for u in moto_bucket.open_uploads()] == [other]
