"""Any fsspec URL as the source, end to end, from the filesystem and from the CLI.

``memory://``, ``file://``, ``http://`` (a server on loopback that answers byte ranges, as
web servers and CDNs do) and ``s3://`` on another S3 endpoint (a second moto server; the
destination is moto, or radosgw in the real-S3 tier). Every source is larger than one part,
so the parts are ranged reads of the source.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from streamify import StreamifyFileSystem
from streamify.cli import main as cli_main

from tests.conftest import Bucket, free_port
from tests.fsspec.conftest import MiB

DATA = os.urandom(11 * MiB + 7)  # three 5 MiB parts, the last one short


class _RangeServer(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` with HEAD, GET and single byte ranges (206)."""

    server: _RangeServer
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def _answer(self, *, with_body: bool) -> None:
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, end, status = 0, len(data), 200
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted:
            start = int(wanted[1])
            end = min(len(data), int(wanted[2]) + 1) if wanted[2] else len(data)
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if with_body:
            self.wfile.write(data[start:end])

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """``http://127.0.0.1:PORT/clip.bin`` serving ``DATA``."""
    server = _RangeServer(("127.0.0.1", 0), _RangeHandler)
    server.files = {"/clip.bin": DATA}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.bin"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def other_s3() -> Iterator[dict[str, str]]:
    """Another S3 endpoint (its own moto server) holding ``s3://source/clip.bin``; its
    fsspec options for ``s3://``."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="source")
    client.put_object(Bucket="source", Key="clip.bin", Body=DATA)
    yield {"endpoint_url": endpoint, "key": "source-key", "secret": "source-secret"}
    server.stop()


@pytest.fixture
def s3_source(other_s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    # fsspec's own configuration names the source's endpoint, as a user would set it.
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(other_s3))
    return "s3://source/clip.bin"


@pytest.fixture
def memory_source() -> Iterator[str]:
    memory = fsspec.filesystem("memory")
    memory.pipe_file("/inbox/clip.bin", DATA)
    yield "memory://inbox/clip.bin"
    memory.rm_file("/inbox/clip.bin")


@pytest.fixture
def file_source(tmp_path: Path) -> str:
    (tmp_path / "clip.bin").write_bytes(DATA)
    return f"file://{tmp_path / 'clip.bin'}"


@pytest.mark.parametrize("kind", ["memory", "file", "http", "s3"])
def test_the_filesystem_uploads_from_any_fsspec_url(
        kind: str, fs: StreamifyFileSystem, bucket: Bucket,
        request: pytest.FixtureRequest) -> None:
    fixture = {"memory": "memory_source", "file": "file_source", "http": "http_url",
               "s3": "s3_source"}[kind]
    url = request.getfixturevalue(fixture)

    result = fs.put_file(url, f"streamify://{bucket.name}/from/{kind}.bin")

    assert result is not None
    assert (result.status, result.parts) == ("completed", 3)
    assert bucket.read(f"from/{kind}.bin") == DATA


def test_put_expands_a_remote_folder(fs: StreamifyFileSystem, bucket: Bucket) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe({"/album/a.bin": b"a" * 10, "/album/sub/b.bin": DATA})
    try:
        fs.put("memory://album/", f"{bucket.name}/album/", recursive=True)
    finally:
        memory.rm("/album", recursive=True)
    assert bucket.read("album/a.bin") == b"a" * 10
    assert bucket.read("album/sub/b.bin") == DATA


def _cli(*args: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "streamify", "upload", *args, "--json",
                           "--no-progress", "--part-size", "5MiB"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.mark.parametrize("kind", ["file", "http", "s3"])
def test_the_cli_uploads_from_any_fsspec_url(
        kind: str, bucket: Bucket, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env = {**os.environ, "STREAMIFY_STATE_DIR": str(tmp_path / "state")}
    if kind == "s3":
        url = "s3://source/clip.bin"
        # fsspec reads FSSPEC_<PROTOCOL> at import: the source's endpoint and keys.
        env["FSSPEC_S3"] = json.dumps(request.getfixturevalue("other_s3"))
    else:
        url = request.getfixturevalue({"file": "file_source", "http": "http_url"}[kind])

    answer = _cli(url, bucket.url(f"cli/{kind}.bin"), "--endpoint-url", bucket.endpoint,
                  env=env)

    assert (answer["status"], answer["parts"]) == ("completed", 3)
    assert bucket.read(f"cli/{kind}.bin") == DATA


def test_the_cli_uploads_from_memory_in_process(
        memory_source: str, bucket: Bucket, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # memory:// lives in one process: the command runs in this one.
    with pytest.raises(SystemExit) as exited:
        cli_main(["upload", memory_source, bucket.url("cli/memory.bin"), "--endpoint-url",
                  bucket.endpoint, "--state-dir", str(tmp_path / "state"), "--json",
                  "--no-progress", "--part-size", "5MiB"])
    assert exited.value.code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["parts"] == 3
    assert bucket.read("cli/memory.bin") == DATA
