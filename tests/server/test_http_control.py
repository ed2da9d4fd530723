"""The engine through the API service: ``HttpControlPlane`` over a real uvicorn to S3.

The ``Uploader`` must behave exactly as in direct mode, resume included, with the client
holding an API key only.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest
from streamify import (
    AccessDeniedError,
    ConfigError,
    Destination,
    DestinationError,
    EndpointError,
    HttpControlPlane,
    Progress,
    StateStore,
    UploadConfig,
    Uploader,
    UploadGoneError,
    UploadResult,
)

from tests.conftest import Bucket, free_port
from tests.helpers import RecordingSender, assert_checksums_signed_and_sent, make_file
from tests.server._support import MiB, md5_b64, put
from tests.server.conftest import TOKENS, Api, running_api

PART = 5 * MiB
CONCURRENCY = 3


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plane(api: Api, who: str = "alice") -> HttpControlPlane:
    return HttpControlPlane(api.url, token=TOKENS[who])


def _run_until_half(api: Api, source: Path, url: str, state: StateStore) -> UploadResult:
    """Run an upload and pause it once about half of it has been sent."""
    config = UploadConfig(part_size=PART, concurrency=CONCURRENCY)
    uploader = Uploader(source, url, control=_plane(api), config=config, state=state)

    def pause_at_half(event: object) -> None:
        if isinstance(event, Progress) and event.bytes_done >= event.total_bytes // 2:
            uploader.pause()

    uploader.subscribe(pause_at_half)
    try:
        return uploader.run()
    finally:
        uploader.close()


def _resume(api: Api, source: Path, url: str, state: StateStore) -> UploadResult:
    config = UploadConfig(part_size=PART, concurrency=CONCURRENCY)
    uploader = Uploader(source, url, control=_plane(api), config=config, state=state)
    try:
        return uploader.run()
    finally:
        uploader.close()


def _check_resumed(first: UploadResult, second: UploadResult, source: Path,
                   bucket: Bucket, key: str) -> None:
    size = source.stat().st_size
    assert first.status == "paused" and 0 < first.bytes_sent < size
    assert second.status == "completed" and second.resumed
    assert second.bytes_resumed > 0
    resent = first.bytes_sent + second.bytes_sent - size
    assert resent <= CONCURRENCY * PART
    assert _sha256(bucket.read(key)) == _sha256(source.read_bytes())
    assert bucket.open_uploads() == []


def test_upload_through_the_service_batches_signing_with_checksums(api: Api, tmp_path: Path,
                                                    state_dir: str) -> None:
    source = make_file(tmp_path / "video.bin", 23 * MiB + 17)
    key = api.key("alice", "video.bin")
    sender = RecordingSender(pool_size=5)
    with Uploader(source, api.bucket.url(key), control=_plane(api), sender=sender,
                  config=UploadConfig(part_size="5MiB", concurrency=5, checksum="sha256"),
                  state=StateStore(state_dir)) as uploader:
        result = uploader.run()
    assert (result.status, result.parts, result.size) == ("completed", 5, 23 * MiB + 17)
    # The service signed each part's SHA-256 (as the client computed it) into its URL.
    assert_checksums_signed_and_sent(sender.puts, "sha256")
    assert _sha256(api.bucket.read(key)) == _sha256(source.read_bytes())
    data = source.read_bytes()
    composite = hashlib.sha256(b"".join(hashlib.sha256(data[i:i + PART]).digest()
                                        for i in range(0, len(data), PART))).digest()
    head = api.bucket.client.head_object(Bucket=api.bucket.name, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(composite).decode()  # sent with each part
    info = _plane(api).head(Destination(api.bucket.name, key))
    assert info is not None and info.etag == result.etag

    sign_calls = [line for line in api.log.splitlines() if '/sign"' in line]
    assert 1 <= len(sign_calls) < 5  # concurrent workers' requests went out together
    assert StateStore(state_dir).all() == []


def test_a_paused_upload_resumes_from_its_state(api: Api, tmp_path: Path,
                                                state_dir: str) -> None:
    source = make_file(tmp_path / "big.bin", 48 * MiB + 5, seed=1)
    key = api.key("alice", "big.bin")
    state = StateStore(state_dir)
    first = _run_until_half(api, source, api.bucket.url(key), state)
    assert [u["Key"] for u in api.bucket.open_uploads()] == [key]
    second = _resume(api, source, api.bucket.url(key), state)
    _check_resumed(first, second, source, api.bucket, key)


def test_another_instance_resumes_without_local_state(moto_bucket: Bucket, tmp_path: Path,
                                                      state_dir: str) -> None:
    """The service is stateless: one instance dies, another one (at another address)
    carries on, and the client finds its upload by listing."""
    source = make_file(tmp_path / "movie.bin", 31 * MiB, seed=2)
    key = "users/alice/movie.bin"
    with running_api(moto_bucket) as first_instance:
        first = _run_until_half(first_instance, source, moto_bucket.url(key),
                                StateStore(state_dir))
    shutil.rmtree(state_dir)
    with running_api(moto_bucket) as second_instance:
        assert second_instance.url != first_instance.url
        second = _resume(second_instance, source, moto_bucket.url(key), StateStore(state_dir))
    _check_resumed(first, second, source, moto_bucket, key)


def test_errors_become_the_core_errors(api: Api) -> None:
    mine = Destination(api.bucket.name, api.key("alice", "x.bin"))
    plane = _plane(api)
    with pytest.raises(AccessDeniedError, match="refused"):
        HttpControlPlane(api.url, token="wrong").list_uploads(mine)
    with pytest.raises(AccessDeniedError, match="outside your prefix"):
        plane.create_upload(Destination(api.bucket.name, "users/bob/x.bin"),
                            content_type="a/b", metadata={}, checksum="none", size=1)
    with pytest.raises(DestinationError, match=r"'\.\.' segments"):
        plane.list_parts(Destination(api.bucket.name, "users/alice/../x"), "u")
    with pytest.raises(DestinationError, match="not 'elsewhere'"):
        plane.head(Destination("elsewhere", mine.key))
    with pytest.raises(ConfigError, match="outside 0"):
        plane.create_upload(mine, content_type="a/b", metadata={}, checksum="none",
                            size=2 * 1024**3)
    with pytest.raises(UploadGoneError, match="no longer exists"):
        plane.list_parts(mine, "no-such-upload")
    with pytest.raises(EndpointError, match="cannot reach the API service"):
        HttpControlPlane(f"http://127.0.0.1:{free_port()}", token="t").head(mine)
    assert plane.head(mine) is None
    assert plane.endpoint == api.url and TOKENS["alice"] not in repr(plane)
    assert api.bucket.open_uploads() == []


@pytest.mark.reals3
def test_a_paused_upload_resumes_through_the_service_on_real_s3(
        real_api: Api, tmp_path: Path, state_dir: str) -> None:
    source = make_file(tmp_path / "real.bin", 26 * MiB + 3, seed=3)
    key = real_api.key("alice", "real.bin")
    state = StateStore(state_dir)
    first = _run_until_half(real_api, source, real_api.bucket.url(key), state)
    second = _resume(real_api, source, real_api.bucket.url(key), state)
    _check_resumed(first, second, source, real_api.bucket, key)


@pytest.mark.reals3
def test_a_signed_md5_binds_the_url_to_the_body_on_real_s3(real_api: Api) -> None:
    """The MD5 a client declares is signed in: storage refuses any other body."""
    client = real_api.client()
    key = real_api.key("alice", "bound.bin")
    upload_id = client.post("/v1/uploads", json={"key": key, "size": 5}).json()["upload_id"]
    signed = client.post(f"/v1/uploads/{upload_id}/sign", json={"key": key, "parts": [
        {"number": 1, "size": 5, "md5": md5_b64(b"hello")}]}).json()["parts"][0]
    assert put(signed["url"], b"jello", signed["headers"]).status_code == 400  # BadDigest
    assert put(signed["url"], b"hello", {}).status_code == 403  # the MD5 header is signed
    assert put(signed["url"], b"hello", signed["headers"]).status_code == 200
