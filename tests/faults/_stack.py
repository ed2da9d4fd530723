"""The system under faults: S3, the API service, and a wire proxy in front of each.

::

    client ──► api proxy ──► API service (a real ``streamify serve`` process) ──► s3 proxy ──► S3
    client ────────────────────────────────────────────────────────────────────► s3 proxy ──► S3

Both paths to S3 cross one proxy (the service signs URLs for the proxy's address, so part
bodies sent through the service cross it too); the control path through the service
crosses the api proxy. The service runs as its own process so that it can be SIGKILLed;
a second instance can stand by for the api proxy to fail over to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from tests.wireproxy import WireProxy

if TYPE_CHECKING:
    import streamify

__all__ = ["TOKEN", "ApiProcess", "Stack", "object_sha256", "open_stack", "run_upload",
           "sha256_file"]

MiB = 1024 * 1024
TOKEN = "faults-key-0123456789abcdef"
PREFIX = "faults/"
_COOKIE_SECRET = "faults-cookie-secret-0123456789"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def object_sha256(client: Any, bucket: str, key: str) -> str:
    """SHA-256 of an object read back from S3, streamed."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(4 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiProcess:
    """One ``streamify serve`` process for ``bucket`` behind ``s3_url``; ``kill()`` is
    SIGKILL, ``start()`` brings it back on the same port."""

    def __init__(self, bucket: str, s3_url: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        principal = {"name": "faults", "prefix": PREFIX,
                     "key_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}
        self._env = {**os.environ, "STREAMIFY_BUCKET": bucket,
                     "STREAMIFY_S3_ENDPOINT_URL": s3_url,
                     "STREAMIFY_PRINCIPALS": json.dumps([principal]),
                     "STREAMIFY_COOKIE_SECRET": _COOKIE_SECRET,
                     # Stopped at the end of every test: no load balancer to drain for.
                     "STREAMIFY_DRAIN_DELAY": "0"}
        self._process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-c", "from streamify.server._command import serve; serve()",
                   "--port", str(self.port)]
        self._process = subprocess.Popen(command, env=self._env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the API service on port {self.port} exited at start")
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if http.request("GET", f"{self.url}/healthz").status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the API service on port {self.port} did not answer in {timeout} s")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


@dataclass
class Stack:
    endpoint: str
    """The S3 server itself (for reading objects back and for mischief)."""
    bucket: str
    client: Any
    s3: WireProxy
    api: WireProxy
    services: list[ApiProcess] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return self.api.url

    def key(self, name: str) -> str:
        return f"{PREFIX}{name}"

    def open_id(self, key: str) -> str:
        """The id of the one open upload to ``key`` (asserted to be the only one)."""
        ids = [u["UploadId"] for u in self.open_uploads() if u["Key"] == key]
        assert len(ids) == 1, ids
        return str(ids[0])

    def open_uploads(self) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        while True:
            page = self.client.list_multipart_uploads(**kwargs)
            uploads += page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return uploads
            kwargs.update(KeyMarker=page["NextKeyMarker"],
                          UploadIdMarker=page["NextUploadIdMarker"])


def run_upload(stack: Stack, path: str | Path, key: str, state: Path,
               config: streamify.UploadConfig, *, mode: str = "direct",
               pause_after: int | None = None,
               on_event: Callable[[streamify.Event], None] | None = None,
               ) -> tuple[streamify.UploadResult, list[streamify.Event]]:
    """One run of ``path`` to ``key`` straight to S3 (``mode="direct"``) or through the API
    service (``"api"``), both across their wire proxy; with ``pause_after``, paused once
    that many parts are done; ``on_event`` sees every event as it comes. Returns the result
    and every event."""
    import streamify

    control: streamify.ControlPlane = (
        streamify.HttpControlPlane(stack.api_url, token=TOKEN) if mode == "api"
        else streamify.S3ControlPlane(endpoint_url=stack.s3.url))
    events: list[streamify.Event] = []
    try:
        with streamify.Uploader(path, f"s3://{stack.bucket}/{key}", control=control,
                                config=config, state=streamify.StateStore(state)) as uploader:

            def record(event: streamify.Event) -> None:
                events.append(event)
                if on_event is not None:
                    on_event(event)
                done = sum(isinstance(e, streamify.PartDone) for e in events)
                if pause_after is not None and done >= pause_after:
                    uploader.pause()

            uploader.subscribe(record)
            return uploader.run(), events
    finally:
        control.close()


@contextlib.contextmanager
def open_stack(endpoint: str, *, services: int = 1, keep_bucket: bool = False,
               ) -> Iterator[Stack]:
    """A fresh bucket on ``endpoint`` with the proxies and ``services`` API processes (the
    api proxy points at the first); everything is removed afterwards, but the emptied bucket
    with ``keep_bucket`` (on a cluster wiped afterwards: radosgw deletes a bucket only once
    every radosgw watching it answers, or a killed one's watch times out, about 30 s)."""
    from streamify._s3control import s3_client

    client = s3_client(endpoint_url=endpoint, region="us-east-1")
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    s3 = WireProxy(endpoint)
    processes = [ApiProcess(bucket, s3.url) for _ in range(services)]
    api = WireProxy(processes[0].url if processes else endpoint)
    stack = Stack(endpoint, bucket, client, s3, api, processes)
    try:
        for process in processes:
            process.start()
        yield stack
    finally:
        for process in processes:
            process.stop()
        api.close()
        s3.close()
        for upload in stack.open_uploads():
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        if not keep_bucket:
            client.delete_bucket(Bucket=bucket)
