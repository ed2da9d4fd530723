"""``open(..., "wb")`` on ``streamify://``: a stream of unknown size, sent while it is written.

A throttled ``WireProxy`` between the filesystem and S3 makes the stream outrun the
network, so what the writer holds back and sends in parallel can be seen on the wire.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from streamify import DestinationError, StreamifyFileSystem

from tests.conftest import Bucket
from tests.fsspec.conftest import MiB, make_fs
from tests.wireproxy import WireProxy

PART = 5 * MiB


@pytest.fixture
def proxy(bucket: Bucket) -> Iterator[WireProxy]:
    wire = WireProxy(bucket.endpoint)
    yield wire
    wire.close()


def test_a_stream_goes_out_in_parallel_parts_with_bounded_memory(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    fs = make_fs(proxy.url, tmp_path / "state", concurrency=3)
    data = os.urandom(8 * PART + 123)
    proxy.rate = 10 * MiB
    written = 0
    held_back: list[int] = []  # bytes write() had accepted but the server had not received
    parts_at_once: list[int] = []  # parts receiving bytes at the same instant
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            counts = proxy.counts()
            held_back.append(written + MiB - counts.part_bytes)
            parts_at_once.append(sum(0 < n < PART for n in counts.parts.values()))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with fs.open(f"streamify://{bucket.name}/stream.bin", "wb") as out:
            for start in range(0, len(data), MiB):
                written += out.write(data[start:start + MiB])
    finally:
        done.set()
        watcher.join()

    assert out.result is not None
    assert (out.result.size, out.result.parts) == (len(data), 9)
    assert bucket.read("stream.bin") == data
    assert bucket.open_uploads() == []
    assert max(parts_at_once) >= 2
    # concurrency parts in flight, plus the part being filled
    assert max(held_back) <= (3 + 1) * PART + MiB


def test_fsspec_open_writes_and_an_exception_in_the_block_leaves_nothing(
        fs: StreamifyFileSystem, bucket: Bucket) -> None:
    url = f"streamify://{bucket.name}/clip.bin"
    options = dict(fs.storage_options)
    with fsspec.open(url, "wb", **options) as out:
        out.write(b"x" * (6 * MiB))
    assert bucket.read("clip.bin") == b"x" * (6 * MiB)

    # fsspec's OpenFile closes the file without telling it why: abort() discards.
    with (pytest.raises(RuntimeError, match="camera unplugged"),  # noqa: PT012
          fsspec.open(f"streamify://{bucket.name}/broken.bin", "wb", **options) as out):
        try:
            out.write(b"y" * (6 * MiB))  # one part already sent
            raise RuntimeError("camera unplugged")
        except RuntimeError:
            out.abort()
            raise
    assert not fs.exists(f"{bucket.name}/broken.bin")
    assert bucket.open_uploads() == []


def test_an_exception_in_a_with_block_on_fs_open_aborts(
        fs: StreamifyFileSystem, bucket: Bucket) -> None:
    with (pytest.raises(KeyError),  # noqa: PT012
          fs.open(f"{bucket.name}/broken.bin", "wb") as out):
        out.write(os.urandom(11 * MiB))
        raise KeyError("frame")
    assert not fs.exists(f"{bucket.name}/broken.bin")
    assert bucket.open_uploads() == []


def test_an_exception_in_a_text_mode_with_block_aborts(
        fs: StreamifyFileSystem, bucket: Bucket) -> None:
    with (pytest.raises(KeyError),  # noqa: PT012
          fs.open(f"{bucket.name}/broken.txt", "w", encoding="utf-8") as text):
        text.write("x" * (6 * MiB))
        text.flush()  # one part already sent
        raise KeyError("row")
    assert not fs.exists(f"{bucket.name}/broken.txt")
    assert bucket.open_uploads() == []


def _while_handling_an_error(write: Callable[[], object]) -> None:
    """Run ``write`` inside an ``except`` block, where error-handling code writes reports."""
    try:
        raise KeyError("frame 12")  # a lookup that failed
    except KeyError:
        write()


@pytest.mark.parametrize("how", ["open", "text", "pipe_file", "touch", "close"])
def test_a_file_written_inside_an_except_handler_is_completed(
        fs: StreamifyFileSystem, bucket: Bucket, how: str) -> None:
    path = f"{bucket.name}/report.txt"
    data = b"" if how == "touch" else os.urandom(6 * MiB + 7)

    def write() -> None:
        if how == "open":
            with fs.open(path, "wb") as out:
                out.write(data)
        elif how == "text":
            with fs.open(path, "w", encoding="latin-1", newline="") as text:
                text.write(data.decode("latin-1"))
        elif how == "pipe_file":
            fs.pipe_file(path, data)
        elif how == "touch":
            fs.touch(path)
        else:
            out = fs.open(path, "wb")
            out.write(data)
            out.close()
            assert out.result is not None and out.result.size == len(data)

    _while_handling_an_error(write)
    assert bucket.read("report.txt") == data
    assert bucket.open_uploads() == []


def test_close_completes_even_while_an_exception_propagates(
        fs: StreamifyFileSystem, bucket: Bucket) -> None:
    # What libraries do: close the handle in `finally`, whatever happened. Closing a file
    # means keeping what was written, as with a local file or s3fs.
    out = fs.open(f"{bucket.name}/partial.bin", "wb")
    data = os.urandom(6 * MiB)
    with pytest.raises(ValueError, match="bad row"):  # noqa: PT012
        try:
            out.write(data)
            raise ValueError("bad row")
        finally:
            out.close()
    assert out.closed
    assert out.result is not None and out.result.size == len(data)
    assert bucket.read("partial.bin") == data
    assert bucket.open_uploads() == []


def test_abort_discards_what_was_written_and_close_after_it_does_nothing(
        fs: StreamifyFileSystem, bucket: Bucket) -> None:
    out = fs.open(f"{bucket.name}/discarded.bin", "wb")
    out.write(os.urandom(6 * MiB))  # one part already sent
    out.abort()
    out.abort()
    out.close()
    assert out.closed and out.result is None
    assert not fs.exists(f"{bucket.name}/discarded.bin")
    assert bucket.open_uploads() == []


def test_closing_twice_completes_once(fs: StreamifyFileSystem, bucket: Bucket) -> None:
    out = fs.open(f"{bucket.name}/twice.bin", "wb")
    out.write(b"once")
    out.close()
    result = out.result
    out.close()
    assert out.result is result and bucket.read("twice.bin") == b"once"


def test_text_mode_empty_files_and_pipe(fs: StreamifyFileSystem, bucket: Bucket) -> None:
    with fs.open(f"{bucket.name}/notes.txt", "w", encoding="utf-8") as text:
        text.write("caméra 2\n")
    assert bucket.read("notes.txt") == "caméra 2\n".encode()
    fs.touch(f"{bucket.name}/empty")
    assert bucket.read("empty") == b""
    fs.pipe({f"{bucket.name}/a": b"a" * 10, f"{bucket.name}/b": os.urandom(7 * MiB)})
    assert fs.cat_file(f"{bucket.name}/a") == b"a" * 10
    assert fs.info(f"{bucket.name}/b")["size"] == 7 * MiB
    assert bucket.open_uploads() == []


def test_a_write_never_creates_a_bucket(fs: StreamifyFileSystem, bucket: Bucket) -> None:
    missing = f"{bucket.name}-missing"
    with (pytest.raises(DestinationError, match=f"bucket '{missing}' does not exist"),
          fsspec.open(f"streamify://{missing}/clip.bin", "wb", **fs.storage_options) as out):
        out.write(b"x")
    assert missing not in {b["Name"] for b in bucket.client.list_buckets()["Buckets"]}


def test_modes_s3_cannot_do_are_refused(fs: StreamifyFileSystem, bucket: Bucket) -> None:
    for mode in ("ab", "r+b", "w+b"):
        with pytest.raises(NotImplementedError, match="written whole"):
            fs.open(f"{bucket.name}/x", mode)
    with pytest.raises(NotImplementedError, match="transactions"), fs.transaction:
        fs.open(f"{bucket.name}/x", "wb")
