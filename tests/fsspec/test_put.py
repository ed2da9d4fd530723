"""``put`` and ``put_file`` through the engine: trees in parallel, progress, and resume.

Part bytes are counted on the wire by ``tests.wireproxy.WireProxy`` between the
filesystem and the S3 server, so "not sent again" is measured, not inferred.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import fsspec
import pytest
from fsspec.callbacks import Callback
from streamify import (
    DestinationError,
    PartDone,
    StreamifyError,
    StreamifyFileSystem,
    Uploader,
)

from tests.conftest import Bucket
from tests.fsspec.conftest import MiB, make_fs, write_tree
from tests.helpers import make_file, parts_held_at_once
from tests.wireproxy import WireProxy


@pytest.fixture
def proxy(bucket: Bucket) -> Iterator[WireProxy]:
    wire = WireProxy(bucket.endpoint)
    yield wire
    wire.close()


class FileProgress(Callback):  # type: ignore[misc]
    """One file's progress, as fsspec hands it to ``put_file``."""

    def __init__(self, parent: TreeProgress) -> None:
        super().__init__()
        self.parent = parent
        self.sizes: list[int] = []

    def set_size(self, size: int) -> None:
        self.sizes.append(size)
        super().set_size(size)

    def close(self) -> None:
        with self.parent.lock:
            self.parent.active -= 1


class TreeProgress(Callback):  # type: ignore[misc]
    """A ``put``'s progress: files done, each file's bytes, and how many ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.files: dict[str, FileProgress] = {}
        self.active = 0
        self.most_active = 0

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> FileProgress:
        child = FileProgress(self)
        with self.lock:
            self.files[path_2] = child
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        return child


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_the_protocol_is_registered_through_the_entry_point() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="fsspec.specs")}
    assert names.get("streamify") == "streamify:StreamifyFileSystem"
    assert fsspec.get_filesystem_class("streamify") is StreamifyFileSystem
    fs, path = fsspec.core.url_to_fs("streamify://bucket/videos/a.mp4",
                                     endpoint_url="http://127.0.0.1:9", part_size="16MiB")
    assert isinstance(fs, StreamifyFileSystem)
    assert path == "bucket/videos/a.mp4"
    assert fs.config.part_size == 16 * MiB


def test_settings_can_come_from_fsspec_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fsspec.config.conf, "streamify",
                        {"endpoint_url": "http://127.0.0.1:9", "concurrency": 6})
    fs = fsspec.filesystem("streamify", part_size="6MiB", skip_instance_cache=True)
    assert (fs.endpoint_url, fs.config.concurrency, fs.config.part_size) == (
        "http://127.0.0.1:9", 6, 6 * MiB)
    # Dask and multiprocessing ship filesystems to workers by pickling them.
    shipped = pickle.dumps(fs)
    monkeypatch.delitem(fsspec.config.conf, "streamify")  # a worker without that config
    copy = pickle.loads(shipped)  # noqa: S301
    assert (copy.endpoint_url, copy.config) == (fs.endpoint_url, fs.config)


def test_put_file_sends_parts_with_progress_and_reads_back(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 5)
    (tmp_path / "clip.mp4").write_bytes(data)
    progress = FileProgress(TreeProgress())

    result = fs.put_file(str(tmp_path / "clip.mp4"), f"streamify://{bucket.name}/in/clip.mp4",
                         callback=progress)

    assert result is not None
    assert (result.status, result.parts, result.size) == ("completed", 3, len(data))
    assert progress.sizes == [len(data)]
    assert progress.value == len(data)
    assert bucket.read("in/clip.mp4") == data
    assert fs.info(f"{bucket.name}/in/clip.mp4")["size"] == len(data)
    assert fs.cat_file(f"{bucket.name}/in/clip.mp4", start=len(data) - 5) == data[-5:]
    assert fs.ls(f"{bucket.name}/in", detail=False) == [f"{bucket.name}/in/clip.mp4"]
    assert bucket.open_uploads() == []


def test_listings_show_what_was_just_written(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    fs.put_file(str(tmp_path / "a.txt"), f"{bucket.name}/docs/a.txt")
    assert fs.ls(f"{bucket.name}/docs", detail=False) == [f"{bucket.name}/docs/a.txt"]
    # s3fs caches that listing; the engine writes behind its back and must say so.
    fs.put_file(str(tmp_path / "a.txt"), f"{bucket.name}/docs/b.txt")
    assert fs.ls(f"{bucket.name}/docs", detail=False) == [
        f"{bucket.name}/docs/a.txt", f"{bucket.name}/docs/b.txt"]
    assert fs.exists(f"{bucket.name}/docs/b.txt")
    fs.pipe_file(f"{bucket.name}/docs/c.txt", b"c")  # a streamed write
    assert fs.ls(f"{bucket.name}/docs", detail=False)[-1] == f"{bucket.name}/docs/c.txt"


def test_put_file_into_a_prefix_keeps_the_file_name(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    fs.put_file(str(tmp_path / "a.txt"), f"{bucket.name}/docs/")
    assert bucket.read("docs/a.txt") == b"hello"


def test_put_file_mode_create_refuses_an_existing_object(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"first")
    fs.put_file(str(tmp_path / "a.txt"), f"{bucket.name}/a.txt", mode="create")
    (tmp_path / "a.txt").write_bytes(b"second")
    with pytest.raises(FileExistsError, match=f"{bucket.name}/a.txt"):
        fs.put_file(str(tmp_path / "a.txt"), f"{bucket.name}/a.txt", mode="create")
    assert bucket.read("a.txt") == b"first"


def test_put_tree_sends_files_in_parallel_with_progress(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    files = write_tree(tmp_path / "tree", [6 * MiB if n % 5 == 0 else 300_000 + n
                                           for n in range(20)])
    fs = make_fs(proxy.url, tmp_path / "state", concurrency=2, batch_size=4)
    progress = TreeProgress()

    fs.put(str(tmp_path / "tree"), f"streamify://{bucket.name}/tree", recursive=True,
           callback=progress)

    for relative, data in files.items():
        assert md5(bucket.read(f"tree/{relative}")) == md5(data), relative
    assert (progress.size, progress.value) == (20, 20)
    assert {path: child.value for path, child in progress.files.items()} == {
        f"{bucket.name}/tree/{relative}": len(data) for relative, data in files.items()}
    # The memory of batch_size x concurrency = 8 parts: a file of 6 MiB holds two, a
    # small one one, so up to eight small files run at once.
    assert 4 < progress.most_active <= 8
    assert proxy.counts().part_bytes == sum(len(d) for d in files.values())
    assert bucket.open_uploads() == []


def test_a_put_holds_batch_size_x_concurrency_parts_and_small_files_share_them(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    make_file(folder / "a-big.mov", 11 * MiB)  # three parts of 5 MiB: first in line
    for n in range(8):
        make_file(folder / f"small-{n}.mov", 100 * 1024, seed=n)
    # The memory of four parts: batch_size 1 x concurrency 4.
    fs = make_fs(proxy.url, tmp_path / "state", concurrency=4, batch_size=1)

    def start() -> Callable[[], None]:
        put = threading.Thread(target=fs.put, args=(str(folder), f"{bucket.name}/in/"),
                               kwargs={"recursive": True})
        put.start()

        def finish() -> None:
            put.join(120)
            assert not put.is_alive()

        return finish

    # The large file's three parts in flight, and one small file beside them: no more.
    held = parts_held_at_once(proxy, ("a-big", "small"), 4, start)
    assert held == ["a-big.mov"] * 3 + ["small-0.mov"], held
    assert bucket.read("in/shoot/small-7.mov") == (folder / "small-7.mov").read_bytes()
    assert bucket.open_uploads() == []


@pytest.mark.reals3
def test_all_files_of_a_put_share_one_connection_pool(
        real_bucket: Bucket, tmp_path: Path) -> None:
    # On radosgw, which keeps connections alive (moto's server closes each one).
    write_tree(tmp_path / "tree", [100_000 + n for n in range(20)])
    wire = WireProxy(real_bucket.endpoint)
    try:
        fs = make_fs(wire.url, tmp_path / "state", concurrency=2, batch_size=4)
        fs.put(str(tmp_path / "tree"), f"{real_bucket.name}/tree", recursive=True)
        counts = wire.counts()
    finally:
        wire.close()
    assert len(counts.parts) == 20
    # A pool per file would open at least one connection per file; one pool reuses them.
    assert counts.part_connections <= 2 * 4


def test_failures_say_which_files_and_to_repeat_the_put(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    write_tree(tmp_path / "tree", [10, 20, 30])
    missing = f"{bucket.name}-missing"
    with pytest.raises(StreamifyError, match=r"3 of 3 files failed .*repeat the same put") as got:
        fs.put(str(tmp_path / "tree") + "/", f"{missing}/t/", recursive=True)
    assert isinstance(got.value.__cause__, DestinationError)
    with pytest.raises(DestinationError, match=f"bucket '{missing}' does not exist"):
        fs.put(str(tmp_path / "tree" / "d0" / "f00.bin"), f"{missing}/one.bin")


def test_repeating_a_finished_put_sends_nothing_but_a_changed_file_is_sent(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    files = write_tree(tmp_path / "tree", [6 * MiB, 100, 200_000, 0])
    fs = make_fs(proxy.url, tmp_path / "state")
    fs.put(str(tmp_path / "tree") + "/", f"{bucket.name}/t/", recursive=True)
    first, seen = proxy.counts(), len(proxy.requests)

    fs.put(str(tmp_path / "tree") + "/", f"{bucket.name}/t/", recursive=True)
    assert (proxy.counts() - first).part_bytes == 0
    # What is there comes from one listing of the prefix, not from a HEAD per file.
    again = proxy.requests[seen:]
    assert [m for m, t in again if m == "HEAD" or "list-type=2" in t] == ["GET"], again

    changed = os.urandom(6 * MiB)  # same size, other bytes: must be sent again
    (tmp_path / "tree" / "d0" / "f00.bin").write_bytes(changed)
    before = proxy.counts()
    fs.put(str(tmp_path / "tree") + "/", f"{bucket.name}/t/", recursive=True)
    assert (proxy.counts() - before).part_bytes == len(changed)
    assert bucket.read("t/d0/f00.bin") == changed
    assert bucket.read("t/d2/f02.bin") == files["d2/f02.bin"]


def test_an_upload_left_open_over_an_identical_object_is_finished_not_left_behind(
        fs: StreamifyFileSystem, bucket: Bucket, tmp_path: Path) -> None:
    data = os.urandom(11 * MiB)
    (tmp_path / "clip.mp4").write_bytes(data)
    fs.put_file(str(tmp_path / "clip.mp4"), f"{bucket.name}/clip.mp4")
    # The same file again (forced), interrupted after one part: its state names the upload.
    again = Uploader(str(tmp_path / "clip.mp4"), bucket.url("clip.mp4"), control=fs.control,
                     config=fs.config.replace(concurrency=1, if_exists="overwrite"),
                     state=fs.state)
    again.subscribe(lambda event: again.pause() if isinstance(event, PartDone) else None)
    assert again.run().status == "paused"
    again.close()
    assert len(bucket.open_uploads()) == 1

    result = fs.put_file(str(tmp_path / "clip.mp4"), f"{bucket.name}/clip.mp4")

    assert result is not None and result.resumed
    assert bucket.open_uploads() == []
    assert bucket.read("clip.mp4") == data


PUT_SCRIPT = """
import json, sys
from streamify import (
    DestinationError,
    PartDone,
    StreamifyError,
    StreamifyFileSystem,
    Uploader,
)
fs = StreamifyFileSystem(**json.loads(sys.argv[1]))
fs.put(sys.argv[2], sys.argv[3], recursive=True)
"""


def _listing(bucket: Bucket, prefix: str) -> tuple[set[str], dict[str, tuple[str, int]]]:
    """Objects under ``prefix``, and open uploads: key -> (upload id, bytes S3 holds)."""
    objects = {item["Key"] for item in bucket.client.list_objects_v2(
        Bucket=bucket.name, Prefix=prefix).get("Contents", [])}
    uploads = {}
    for upload in bucket.open_uploads():
        try:
            parts = bucket.client.list_parts(Bucket=bucket.name, Key=upload["Key"],
                                             UploadId=upload["UploadId"]).get("Parts", [])
        except botocore.exceptions.ClientError:
            continue  # completed meanwhile (moto: NoSuchUpload, radosgw: NoSuchKey)
        uploads[upload["Key"]] = (upload["UploadId"], sum(p["Size"] for p in parts))
    return objects, uploads


def _part_numbers(bucket: Bucket, key: str, upload_id: str) -> set[int]:
    parts = bucket.client.list_parts(Bucket=bucket.name, Key=key,
                                     UploadId=upload_id).get("Parts", [])
    return {part["PartNumber"] for part in parts}


def test_a_sigkilled_put_of_20_files_repeated_sends_only_what_is_missing(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    files = write_tree(tmp_path / "tree", [6 * MiB] * 20)
    total = 20 * 6 * MiB
    options = {"endpoint_url": proxy.url, "key": os.environ["AWS_ACCESS_KEY_ID"],
               "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
               "client_kwargs": {"region_name": "us-east-1"},
               "state_dir": str(tmp_path / "state"), "part_size": "5MiB", "concurrency": 2,
               "batch_size": 2}
    # Trailing slashes: the same targets whether or not the prefix exists yet (fsspec's
    # rule, as for cp -r), so the repeated put names the same objects.
    source, target = str(tmp_path / "tree") + "/", f"streamify://{bucket.name}/tree/"
    proxy.rate = total / 8  # the first run would take about 8 s
    process = subprocess.Popen([sys.executable, "-c", PUT_SCRIPT, json.dumps(options),
                                source, target], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"put ended before the kill: {process.stderr}"
            assert time.monotonic() < deadline, "the kill point was not reached in 60 s"
            objects, uploads = _listing(bucket, "tree/")
            if len(objects) >= 6 and any(held for _, held in uploads.values()):
                break
            time.sleep(0.05)
        proxy.freeze()
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        proxy.cut()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    time.sleep(0.5)  # the server drops the bodies cut short
    finished, unfinished = _listing(bucket, "tree/")
    assert 6 <= len(finished) < 20
    assert any(held for _, held in unfinished.values())
    held_parts = {upload_id: _part_numbers(bucket, key, upload_id)
                  for key, (upload_id, _) in unfinished.items()}
    proxy.rate = None
    before = proxy.counts()

    make_fs(proxy.url, tmp_path / "state").put(source, target, recursive=True)

    rerun = proxy.counts() - before
    sent: dict[str, set[int]] = {}
    for upload_id, number in rerun.parts:
        sent.setdefault(upload_id, set()).add(number)
    keys = {}  # upload id -> key, from the requests that carried its parts
    for method, request in proxy.requests:
        split = urllib.parse.urlsplit(request)
        upload = urllib.parse.parse_qs(split.query).get("uploadId")
        if method == "PUT" and upload:
            keys[upload[0]] = split.path.split("/", 2)[-1]
    said = (f"held {held_parts}, finished {sorted(finished)}, re-run sent "
            f"{ {(keys.get(u, u), n): b for (u, n), b in rerun.parts.items()} }")
    # Each open upload gets exactly its missing parts; no part storage held goes again.
    for key, (upload_id, _) in unfinished.items():
        assert sent.pop(upload_id, set()) == {1, 2} - held_parts[upload_id], (key, said)
    # The files neither finished nor begun get one new upload each, of both parts; a
    # finished file gets nothing.
    assert len(sent) == 20 - len(finished) - len(unfinished), said
    assert all(numbers == {1, 2} for numbers in sent.values()), said
    # Bytes: each part sent whole, at most twice (once more only after a lost answer).
    sizes = {1: 5 * MiB, 2: 1 * MiB}
    for (_, number), count in rerun.parts.items():
        assert count in (sizes[number], 2 * sizes[number]), said
    missing = total - 6 * MiB * len(finished) - sum(held for _, held in unfinished.values())
    if rerun.part_bytes != missing:
        print(f"re-run sent {rerun.part_bytes - missing} bytes twice: {said}")
    for relative, data in files.items():
        assert md5(bucket.read(f"tree/{relative}")) == md5(data), relative
    assert bucket.open_uploads() == []


def test_ctrl_c_stops_a_put_after_the_parts_in_flight_and_a_repeat_finishes_it(
        bucket: Bucket, proxy: WireProxy, tmp_path: Path) -> None:
    files = write_tree(tmp_path / "tree", [16 * MiB] * 8)  # four parts each
    options = {"endpoint_url": proxy.url, "key": os.environ["AWS_ACCESS_KEY_ID"],
               "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
               "client_kwargs": {"region_name": "us-east-1"},
               "state_dir": str(tmp_path / "state"), "part_size": "5MiB", "concurrency": 1,
               "batch_size": 2}
    source, target = str(tmp_path / "tree") + "/", f"streamify://{bucket.name}/tree/"
    proxy.rate = 8 * MiB
    process = subprocess.Popen([sys.executable, "-c", PUT_SCRIPT, json.dumps(options),
                                source, target], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(_listing(bucket, "tree/")[0]) < 2:
            assert process.poll() is None, f"put ended before Ctrl-C: {process.stderr}"
            assert time.monotonic() < deadline, "two files were not done in 60 s"
            time.sleep(0.05)
        at_interrupt = proxy.counts()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    # Only the parts in flight went on (at most batch_size x concurrency of them): no new
    # part of the files running, no file not yet started.
    assert (proxy.counts() - at_interrupt).part_bytes <= 2 * 1 * 5 * MiB
    finished, _ = _listing(bucket, "tree/")
    assert len(finished) < 8

    proxy.rate = None
    make_fs(proxy.url, tmp_path / "state").put(source, target, recursive=True)
    for relative, data in files.items():
        assert md5(bucket.read(f"tree/{relative}")) == md5(data), relative
    assert bucket.open_uploads() == []
