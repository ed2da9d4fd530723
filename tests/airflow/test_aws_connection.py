"""An ``aws`` connection's client extras reach the S3 client, as the Amazon provider reads
them: ``config_kwargs`` (any botocore ``Config`` argument) and ``verify``.

The connection sends its S3 calls through a proxy (``config_kwargs.proxies``), a
``WireProxy`` in front of moto that records each request's target: so what the client was
told shows on the wire, the addressing style included. (Part bodies go to the presigned
URLs directly, not through the botocore client and its proxy.)
"""

from __future__ import annotations

import os
import select
import socket
import socketserver
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from streamify_airflow import StreamifyHook, StreamifyUploadOperator
from tests.airflow._support import MiB
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket
from tests.wireproxy import WireProxy


@pytest.fixture
def proxy(moto_bucket: Bucket) -> Iterator[WireProxy]:
    wire = WireProxy(moto_bucket.endpoint)
    yield wire
    wire.close()


def _aws_connection(monkeypatch: pytest.MonkeyPatch, endpoint: str, **extra: Any) -> str:
    set_connection(monkeypatch, "aws_extras", conn_type="aws", login="testing",
                   password="testing",
                   extra={"endpoint_url": endpoint, "region_name": "us-east-1", **extra})
    return "aws_extras"


def _upload(conn_id: str, tmp_path: Path, destination: str) -> dict[str, Any]:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 4096)
    operator = StreamifyUploadOperator(task_id="upload", source=str(video),
                                       destination=destination, conn_id=conn_id,
                                       state_location=str(tmp_path / "state"))
    result: dict[str, Any] = operator.execute({})
    return result


def test_config_kwargs_reach_the_client_addressing_style_included(
        airflow_db: Path, moto_bucket: Bucket, proxy: WireProxy, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = urllib.parse.urlsplit(moto_bucket.endpoint).port
    endpoint = f"http://localhost:{port}"  # a host name: an IP address is always path style
    conn_id = _aws_connection(monkeypatch, endpoint, config_kwargs={
        "s3": {"addressing_style": "path"}, "proxies": {"http": proxy.url}})

    _upload(conn_id, tmp_path, moto_bucket.url("a/clip.mp4"))

    targets = [target for _, target in proxy.requests]
    assert targets, "no request went through the proxy named in config_kwargs"
    expected = f"http://localhost:{port}/{moto_bucket.name}"
    assert all(target.startswith(expected) for target in targets), targets
    assert any(target.startswith(f"{expected}/a/clip.mp4") for target in targets), targets
    assert moto_bucket.read("a/clip.mp4").startswith(b"\x00\x00\x00\x18ftypmp42")


@pytest.mark.parametrize(("verify", "verified"), [(False, False), ("false", False),
                                                  (True, True), ("true", True), (None, True)])
def test_verify_reaches_the_client(verify: object, verified: bool, airflow_db: Path,
                                   moto_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {} if verify is None else {"verify": verify}
    conn_id = _aws_connection(monkeypatch, moto_bucket.endpoint, **extra)

    with StreamifyHook(conn_id) as hook:
        client = hook.get_conn().client  # type: ignore[attr-defined]
        # botocore keeps it on the endpoint's HTTP session, where every request reads it:
        # False, or True / the default CA bundle's path.
        assert (client._endpoint.http_session._verify is not False) is verified


def test_a_ca_bundle_path_reaches_the_client(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    conn_id = _aws_connection(monkeypatch, moto_bucket.endpoint, verify=str(bundle))

    with StreamifyHook(conn_id) as hook:
        client = hook.get_conn().client  # type: ignore[attr-defined]
        assert client._endpoint.http_session._verify == str(bundle)


def test_a_ca_bundle_that_is_not_there_names_the_connection_extra(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _aws_connection(monkeypatch, moto_bucket.endpoint,
                              verify=str(tmp_path / "no-such-ca.pem"))

    with pytest.raises(AirflowFailException) as caught:
        _upload(conn_id, tmp_path, moto_bucket.url("a/clip.mp4"))

    assert str(caught.value) == (
        f"connection 'aws_extras': extra 'verify' is '{tmp_path}/no-such-ca.pem', which is no "
        "CA bundle file or folder on this worker: give true, false or the path of a PEM "
        "bundle")


class _TlsFront:
    """moto behind TLS on loopback, with a self-signed certificate made here (``ca``)."""

    def __init__(self, upstream: str, folder: Path) -> None:
        self.ca = folder / "ca.pem"
        key = folder / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(self.ca)],
                       check=True, capture_output=True)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.ca, key)
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        serve = self._serve

        class Connection(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Connection)
        self._server.daemon_threads = True
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()  # a client that refused the certificate
            return
        upstream = socket.create_connection(self._upstream)
        with secure, upstream:
            _relay(secure, upstream)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _relay(secure: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Carry bytes both ways until either end closes, on this one thread: an SSL socket
    read on one thread while another writes to it can corrupt its records (OpenSSL's
    object is not safe for that; the client saw "bad record mac")."""
    other = {secure: upstream, upstream: secure}
    while True:
        # Bytes OpenSSL already decrypted do not wake select: take them first.
        ready = [secure] if secure.pending() else select.select(list(other), [], [])[0]
        for source in ready:
            try:
                data = source.recv(65536)
                if not data:
                    return
                other[source].sendall(data)
            except OSError:
                return


@pytest.fixture
def tls_moto(moto_bucket: Bucket, tmp_path: Path) -> Iterator[_TlsFront]:
    front = _TlsFront(moto_bucket.endpoint, tmp_path)
    yield front
    front.close()


@pytest.mark.parametrize("verify", ["ca", False])
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_holds_for_the_part_bodies_too(
        verify: object, airflow_db: Path, moto_bucket: Bucket, tls_moto: _TlsFront,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTPS with a certificate no system trusts: with ``verify`` the CA bundle, or
    false, a multipart upload goes through, its parts (sent to presigned URLs, not by the
    botocore client) included; without it the task fails on the certificate."""
    video = tmp_path / "long.mp4"
    video.write_bytes(os.urandom(11 * MiB))
    setting = str(tls_moto.ca) if verify == "ca" else verify

    conn_id = _aws_connection(monkeypatch, tls_moto.url, verify=setting)
    result = StreamifyUploadOperator(
        task_id="upload", source=str(video), destination=moto_bucket.url("t/long.mp4"),
        conn_id=conn_id, part_size="5MiB", state_location=str(tmp_path / "state")).execute({})

    assert (result["parts"], result["bytes_sent"]) == (3, 11 * MiB)
    assert moto_bucket.read("t/long.mp4") == video.read_bytes()

    conn_id = _aws_connection(monkeypatch, tls_moto.url)
    with pytest.raises(AirflowException, match=r"TLS certificate .* does not verify"):
        StreamifyUploadOperator(
            task_id="upload", source=str(video), destination=moto_bucket.url("t/again.mp4"),
            conn_id=conn_id, part_size="5MiB", state_location=str(tmp_path / "state")).execute({})
