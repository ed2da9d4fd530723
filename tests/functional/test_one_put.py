"""A source that fits in one part goes as one ``PutObject``: no multipart upload at all.

Every request the client makes is seen by the counting proxy in front of moto's server.
"""

from __future__ import annotations

import hashlib
from contextlib import closing
from pathlib import Path

import pytest
import streamify
from streamify import (
    LocalFileSource,
    S3ControlPlane,
    SourceChangedError,
    StateStore,
    UploadConfig,
    Uploader,
)

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.wireproxy import WireProxy

MiB = 1024 * 1024
CONFIG = UploadConfig(part_size=5 * MiB, concurrency=3, backoff_base=0.01, backoff_max=0.05,
                      content_type="video/mp4")


def _uploader(path: Path, bucket: Bucket, moto_proxy: WireProxy, state_dir: str,
              config: UploadConfig = CONFIG) -> Uploader:
    return Uploader(path, bucket.url(f"one/{path.name}"),
                    control=S3ControlPlane(endpoint_url=moto_proxy.url), config=config,
                    state=StateStore(state_dir), metadata={"camera": "a7-iv"})


def _object_puts(method: str, target: str) -> bool:
    return method == "PUT" and "/one/" in target and "partNumber=" not in target


def test_a_file_that_fits_in_one_part_is_one_put_with_its_type_and_metadata(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 3 * MiB + 17)
    with _uploader(path, moto_bucket, moto_proxy, state_dir) as uploader:
        result = uploader.run()
    methods = [(method, target.split("?")[1] if "?" in target else "")
               for method, target in moto_proxy.requests]
    # Is the object already there (HEAD), then the one PUT: no create, list, part, complete.
    assert [m for m, _ in methods] == ["HEAD", "PUT"], moto_proxy.requests
    assert not any("uploads" in query or "partNumber" in query for _, query in methods)
    assert moto_bucket.read(f"one/{path.name}") == path.read_bytes()
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key=f"one/{path.name}")
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"camera": "a7-iv"}
    assert result.status == "completed" and result.parts == 1 and result.upload_id == ""
    assert result.etag == hashlib.md5(path.read_bytes()).hexdigest()
    assert result.bytes_sent == path.stat().st_size
    assert not list(Path(state_dir).glob("*.json"))  # nothing to resume, nothing kept


def test_the_one_put_is_retried_and_an_unchanged_rerun_sends_nothing(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 5 * MiB)  # exactly one part
    moto_proxy.fail_requests(503, "SlowDown", count=2, match=_object_puts)
    events: list[streamify.Event] = []
    with _uploader(path, moto_bucket, moto_proxy, state_dir) as uploader:
        uploader.subscribe(events.append)
        result = uploader.run()
    assert moto_proxy.faults["503 SlowDown"] == 2
    assert [type(e).__name__ for e in events].count("Retrying") == 2
    assert result.bytes_sent == 3 * path.stat().st_size  # sent three times: retries count
    assert moto_bucket.read(f"one/{path.name}") == path.read_bytes()

    before = len(moto_proxy.requests)
    with _uploader(path, moto_bucket, moto_proxy, state_dir) as uploader:
        again = uploader.run()
    assert again.skipped and again.bytes_sent == 0
    assert [m for m, _ in moto_proxy.requests[before:]] == ["HEAD"]


def test_a_file_over_one_part_is_still_a_resumable_multipart_upload(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 5 * MiB + 1)
    with _uploader(path, moto_bucket, moto_proxy, state_dir) as uploader:
        result = uploader.run()
    assert result.parts == 2 and result.upload_id
    assert any("partNumber=2" in target for _, target in moto_proxy.requests)
    assert moto_bucket.read(f"one/{path.name}") == path.read_bytes()


def test_an_empty_file_is_one_put(tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy,
                                  state_dir: str) -> None:
    path = make_file(tmp_path / "empty.mp4", 0)
    with _uploader(path, moto_bucket, moto_proxy, state_dir) as uploader:
        result = uploader.run()
    assert [m for m, _ in moto_proxy.requests] == ["HEAD", "PUT"]
    assert result.status == "completed" and result.size == 0
    assert moto_bucket.read(f"one/{path.name}") == b""


def test_a_one_put_upload_writes_nothing_to_the_state_directory(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy) -> None:
    state = tmp_path / "state"  # not there yet: checking that it is writable makes it
    small = make_file(tmp_path / "small.mp4", MiB)
    with _uploader(small, moto_bucket, moto_proxy, str(state)) as uploader:
        assert uploader.run().status == "completed"
    assert not state.exists()  # no probe, no state: nothing to resume
    big = make_file(tmp_path / "big.mp4", 6 * MiB)  # a multipart upload: it needs its state
    with _uploader(big, moto_bucket, moto_proxy, str(state)) as uploader:
        assert uploader.run().parts == 2
    assert state.is_dir()


def test_a_file_changed_while_it_is_read_is_not_sent(tmp_path: Path, moto_bucket: Bucket,
                                                     moto_proxy: WireProxy, state_dir: str) -> None:
    path = make_file(tmp_path / "growing.mp4", 2 * MiB)

    class Growing(LocalFileSource):
        def read(self, offset: int, size: int) -> bytes:
            data = super().read(offset, size)
            with path.open("ab") as more:  # a recorder still writing
                more.write(b"more")
            return data

    with closing(Growing(path)) as source, \
            Uploader(source, moto_bucket.url("one/growing.mp4"),
                     control=S3ControlPlane(endpoint_url=moto_proxy.url), config=CONFIG,
                     state=StateStore(state_dir)) as uploader, \
            pytest.raises(SourceChangedError, match="nothing was sent"):
        uploader.run()
    assert [m for m, _ in moto_proxy.requests] == ["HEAD"]
