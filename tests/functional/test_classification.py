"""What each failure means, over real HTTP: the one classifier (``_retry``) decides for
control calls and part PUTs alike, and what cannot be helped by retrying is said at once
with the right exit code."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamify import (
    AccessDeniedError,
    EndpointError,
    HttpControlPlane,
    S3ControlPlane,
    StateStore,
    TransferError,
    UploadConfig,
    Uploader,
)
from streamify._destination import Destination

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.wireproxy import WireProxy, any_request, part_puts

MiB = 1024 * 1024
FAST = UploadConfig(part_size="5MiB", concurrency=1, backoff_base=0.01, backoff_max=0.05)


def _control_calls(method: str, target: str) -> bool:
    return not part_puts(method, target)


def _upload(bucket: Bucket, proxy: WireProxy, path: Path, tmp_path: Path,
            config: UploadConfig = FAST) -> None:
    control = S3ControlPlane(endpoint_url=proxy.url)
    try:
        with Uploader(path, bucket.url("v.bin"), control=control, config=config,
                      state=StateStore(tmp_path / "state")) as uploader:
            uploader.run()
    finally:
        control.close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path: Path = make_file(tmp_path / "v.bin", 11 * MiB, seed=3)
    return path


def test_a_5xx_that_outlives_the_budget_is_an_endpoint_error(
        moto_bucket: Bucket, moto_proxy: WireProxy, video: Path, tmp_path: Path) -> None:
    moto_proxy.fail_requests(500, "InternalError", count=1000, match=_control_calls)
    with pytest.raises(EndpointError, match="tried 3 times") as caught:
        _upload(moto_bucket, moto_proxy, video, tmp_path, FAST.replace(max_attempts=3))
    assert caught.value.exit_code == 7
    assert moto_proxy.faults["500 InternalError"] == 3


def test_a_control_call_answered_501_is_not_retried(
        moto_bucket: Bucket, moto_proxy: WireProxy, video: Path, tmp_path: Path) -> None:
    moto_proxy.fail_requests(501, "NotImplemented", count=1000, match=_control_calls)
    with pytest.raises(EndpointError, match="does not implement") as caught:
        _upload(moto_bucket, moto_proxy, video, tmp_path)
    assert caught.value.exit_code == 7 and not caught.value.transient
    assert moto_proxy.faults["501 NotImplemented"] == 1


@pytest.mark.parametrize("calls", ["control", "part"])
def test_a_clock_off_by_minutes_is_said_once_and_not_retried(
        moto_bucket: Bucket, moto_proxy: WireProxy, video: Path, tmp_path: Path,
        calls: str) -> None:
    match = _control_calls if calls == "control" else part_puts
    moto_proxy.fail_requests(403, "RequestTimeTooSkewed", count=1000, match=match)
    with pytest.raises(AccessDeniedError, match="clock"):
        _upload(moto_bucket, moto_proxy, video, tmp_path)
    assert moto_proxy.faults["403 RequestTimeTooSkewed"] == 1


@pytest.mark.parametrize("calls", ["control", "part"])
def test_an_unknown_access_key_is_refused_once_not_signed_again(
        moto_bucket: Bucket, moto_proxy: WireProxy, video: Path, tmp_path: Path,
        calls: str) -> None:
    match = _control_calls if calls == "control" else part_puts
    moto_proxy.fail_requests(403, "InvalidAccessKeyId", count=1000, match=match)
    with pytest.raises(AccessDeniedError, match="credentials") as caught:
        _upload(moto_bucket, moto_proxy, video, tmp_path)
    assert caught.value.exit_code == 6
    assert moto_proxy.faults["403 InvalidAccessKeyId"] == 1


def test_a_part_put_failing_for_good_is_a_transfer_error_after_the_budget(
        moto_bucket: Bucket, moto_proxy: WireProxy, video: Path, tmp_path: Path) -> None:
    moto_proxy.fail_requests(503, "SlowDown", count=1000, match=part_puts)
    with pytest.raises(TransferError, match="failed 4 times"):
        _upload(moto_bucket, moto_proxy, video, tmp_path, FAST.replace(max_attempts=4))
    assert moto_proxy.faults["503 SlowDown"] == 4


# ---------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server whose self-signed certificate no client trusts."""
    where = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(where / "key.pem"),
                    "-out", str(where / "cert.pem")], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "cert.pem", where / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("plane", ["s3", "api"])
def test_a_certificate_that_does_not_verify_is_said_at_once(tls_server: str,
                                                            plane: str) -> None:
    control = (S3ControlPlane(endpoint_url=tls_server) if plane == "s3"
               else HttpControlPlane(tls_server, token="t"))
    from streamify._calls import RetryingControlPlane

    calls = RetryingControlPlane(control, UploadConfig())
    try:
        with pytest.raises(EndpointError, match="certificate") as caught:
            calls.head(Destination("bucket", "k"))
    finally:
        control.close()
    assert not caught.value.transient and caught.value.exit_code == 7


def test_a_network_failure_is_retried(moto_bucket: Bucket, moto_proxy: WireProxy,
                                      video: Path, tmp_path: Path) -> None:
    moto_proxy.reset_requests(count=2, match=any_request)
    _upload(moto_bucket, moto_proxy, video, tmp_path)
    assert moto_proxy.faults["reset"] == 2
    assert moto_bucket.read("v.bin") == video.read_bytes()


# ---------------------------------------------------------------------- bucket names
@pytest.mark.parametrize(("bucket", "said"), [
    ("ab", "'ab' is not a valid bucket name"),
    ("UPPER", "'UPPER' is not even a valid name for a new bucket"),
    ("no-such-bucket-here", "does not exist; create it"),
])
def test_a_wrong_bucket_name_is_said_as_such(moto_bucket: Bucket, tmp_path: Path,
                                             bucket: str, said: str) -> None:
    import fsspec
    from streamify import DestinationError

    path = make_file(tmp_path / "small.bin", 1000)
    run = subprocess.run([sys.executable, "-m", "streamify", "upload", "--endpoint-url",
                          moto_bucket.endpoint, str(path), f"s3://{bucket}/x"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 5, run.stderr
    assert said in run.stderr
    fs = fsspec.filesystem("streamify", endpoint_url=moto_bucket.endpoint,
                           skip_instance_cache=True)
    with pytest.raises(DestinationError, match=said):
        fs.pipe_file(f"{bucket}/x", b"hello")
