"""CRC64NVME in Content-MD5's place, against moto's S3 server over real HTTP.

What moto 5.2.5 does with these headers: it starts an upload with ``ChecksumAlgorithm``
CRC64NVME and ``ChecksumType`` FULL_OBJECT, and after complete it computes the object's
CRC64NVME from the bytes it holds and reports it on HEAD with ``ChecksumMode=ENABLED``. It
does not check a part's ``x-amz-checksum-crc64nvme`` against the part's body (AWS S3 does,
and refuses the PUT), nor list parts' checksums. So these tests check the headers
themselves, and that the full-object check after complete catches a part that moto took
damaged.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import streamify
from awscrt import checksums
from streamify import (
    IntegrityError,
    S3ControlPlane,
    StateStore,
    StreamWriter,
    UploadConfig,
    Uploader,
)
from streamify._control import SignedPart

from tests.conftest import Bucket
from tests.helpers import RecordingSender, make_file

MiB = 1024 * 1024
CRC_ONLY = UploadConfig(part_size=5 * MiB, concurrency=3, checksum="crc64nvme",
                        content_md5=False)
HEADER = "x-amz-checksum-crc64nvme"


def _crc(data: bytes) -> str:
    return base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()


# Every uploader a test makes is closed after it (it holds the file open).
_uploaders = contextlib.ExitStack()


@pytest.fixture(autouse=True)
def _close_uploaders() -> Iterator[None]:
    with _uploaders:
        yield


def _uploader(path: Path, bucket: Bucket, key: str, state_dir: str, *,
              config: UploadConfig = CRC_ONLY,
              sender: RecordingSender | None = None) -> Uploader:
    return _uploaders.enter_context(Uploader(
        path, bucket.url(key), control=S3ControlPlane(endpoint_url=bucket.endpoint),
        config=config, state=StateStore(state_dir), sender=sender))


def _stored_crc(bucket: Bucket, key: str) -> tuple[str | None, str | None]:
    head = bucket.client.head_object(Bucket=bucket.name, Key=key, ChecksumMode="ENABLED")
    return head.get("ChecksumCRC64NVME"), head.get("ChecksumType")


def _signed_crc_without_md5(signed: SignedPart, body: bytes) -> None:
    """``signed`` carries ``body``'s CRC64NVME, signed into its URL, and no Content-MD5."""
    assert signed.headers.get(HEADER) == _crc(body)
    signed_headers = parse_qs(urlsplit(signed.url).query)["X-Amz-SignedHeaders"][0]
    assert HEADER in signed_headers.split(";")
    assert "Content-MD5" not in signed.headers and "content-md5" not in signed_headers


def test_crc64nvme_replaces_content_md5_and_checks_the_whole_object(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    data = path.read_bytes()
    sender = RecordingSender()
    result = _uploader(path, moto_bucket, "v.mp4", state_dir, sender=sender).run()
    assert result.status == "completed" and len(sender.puts) == result.parts == 3
    for signed, body in sender.puts:
        _signed_crc_without_md5(signed, body)
    assert moto_bucket.read("v.mp4") == data
    assert _stored_crc(moto_bucket, "v.mp4") == (_crc(data), "FULL_OBJECT")


def test_a_file_of_one_part_goes_as_one_put_carrying_its_crc64nvme(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "short.mp4", 3 * MiB)
    data = path.read_bytes()
    sender = RecordingSender()
    result = _uploader(path, moto_bucket, "short.mp4", state_dir, sender=sender).run()
    assert result.status == "completed" and result.upload_id == ""  # no multipart upload
    [(signed, body)] = sender.puts
    assert "partNumber" not in signed.url and body == data
    _signed_crc_without_md5(signed, body)  # the whole object's CRC: the store checks it
    assert moto_bucket.read("short.mp4") == data  # (moto keeps no checksum of a PutObject)


class DamagingSender(RecordingSender):
    """Flips one byte of part 2 after its checksum was taken, as a faulty network card or
    proxy might: a store that checks the part's CRC refuses it; moto keeps it."""

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        if signed.number == 2:
            body = bytes([body[0] ^ 1]) + body[1:]
        return super().put(signed, body, on_progress)


def test_a_part_damaged_on_the_way_is_caught_by_the_full_object_crc(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    with pytest.raises(IntegrityError, match="CRC64NVME") as caught:
        _uploader(path, moto_bucket, "v.mp4", state_dir, sender=DamagingSender()).run()
    assert "delete it and upload again" in str(caught.value)


def test_an_upload_without_content_md5_resumes_by_state_and_by_listing(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 22 * MiB)
    config = CRC_ONLY.replace(concurrency=1)

    def run_until_part(last: int | None, sender: RecordingSender) -> streamify.UploadResult:
        uploader = _uploader(path, moto_bucket, "v.mp4", state_dir, config=config,
                             sender=sender)

        def pause_after(event: streamify.Event) -> None:
            if isinstance(event, streamify.PartDone) and event.number == last:
                uploader.pause()

        uploader.subscribe(pause_after)
        return uploader.run()

    assert run_until_part(1, RecordingSender()).status == "paused"
    by_state = RecordingSender()
    second = run_until_part(2, by_state)
    assert second.status == "paused" and second.resumed and second.bytes_resumed == 5 * MiB
    assert [signed.number for signed, _ in by_state.puts] == [2]
    # Found by listing (no state), the parts there are checked against the source (moto
    # lists no part checksums, but its ETags are the parts' MD5s).
    store = StateStore(state_dir)
    store.remove(store.all()[0].endpoint, store.all()[0].destination)
    by_listing = RecordingSender()
    done = run_until_part(None, by_listing)
    assert done.status == "completed" and done.resumed and done.bytes_resumed == 10 * MiB
    assert [signed.number for signed, _ in by_listing.puts] == [3, 4, 5]
    assert all(signed.headers.get(HEADER) == _crc(body) for signed, body in by_listing.puts)
    assert _stored_crc(moto_bucket, "v.mp4")[0] == _crc(path.read_bytes())


@pytest.mark.parametrize("damaged", [False, True])
def test_a_stream_without_content_md5_is_checked_by_its_crc(tmp_path: Path, moto_bucket: Bucket,
                                                           damaged: bool) -> None:
    data = make_file(tmp_path / "v.ts", 12 * MiB).read_bytes()
    sender = DamagingSender() if damaged else RecordingSender()
    writer = StreamWriter(moto_bucket.url("v.ts"), sender=sender, config=CRC_ONLY,
                          control=S3ControlPlane(endpoint_url=moto_bucket.endpoint))
    for start in range(0, len(data), MiB):
        writer.write(data[start : start + MiB])
    if damaged:
        with pytest.raises(IntegrityError, match="CRC64NVME"):
            writer.close()
        return
    assert writer.close().parts == 3
    assert all(signed.headers.get(HEADER) == _crc(body) and "Content-MD5" not in signed.headers
               for signed, body in sender.puts)
    assert _stored_crc(moto_bucket, "v.ts") == (_crc(data), "FULL_OBJECT")


def _cli(*args: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    return subprocess.run([sys.executable, "-m", "streamify", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_command_takes_crc64nvme_without_content_md5(tmp_path: Path, moto_bucket: Bucket,
                                                         state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 11 * MiB)
    ok = _cli("upload", "--endpoint-url", moto_bucket.endpoint, "--part-size", "5MiB",
              "--checksum", "crc64nvme", "--no-content-md5", str(path),
              moto_bucket.url("v.mp4"), state_dir=state_dir)
    assert ok.returncode == 0, ok.stderr
    assert _stored_crc(moto_bucket, "v.mp4") == (_crc(path.read_bytes()), "FULL_OBJECT")
    refused = _cli("upload", "--endpoint-url", moto_bucket.endpoint, "--no-content-md5",
                   str(path), moto_bucket.url("w.mp4"), state_dir=state_dir)
    assert refused.returncode == 2
    assert "crc64nvme" in refused.stderr and "content" in refused.stderr.lower()
