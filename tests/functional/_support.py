"""What several command-line tests share: running ``streamify``, an upload paused after
its first part, and a host that should never see credentials."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import streamify as api

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024


def run_streamify(*args: str, state_dir: str, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """``streamify ARGS`` as a user runs it: no ``STREAMIFY_*`` or AWS endpoint setting
    from the test's own environment, only ``env`` and the state directory."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("STREAMIFY_", "AWS_ENDPOINT_URL"))}
    return subprocess.run([sys.executable, "-m", "streamify", *args],
                          env={**clean, "STREAMIFY_STATE_DIR": state_dir, **(env or {})},
                          capture_output=True, text=True, timeout=300, check=False)


def paused_upload(path: Path, bucket: Bucket, key: str, state_dir: str, *,
                  control: api.ControlPlane | None = None) -> Path:
    """Start uploading a 12 MiB file at ``path`` to ``key`` and pause it after its first
    5 MiB part (through ``control``, S3 at the bucket's endpoint by default)."""
    make_file(path, 12 * MiB)
    plane = control or api.S3ControlPlane(endpoint_url=bucket.endpoint)
    with api.Uploader(path, bucket.url(key), control=plane,
                      config=api.UploadConfig(part_size=5 * MiB, concurrency=1),
                      state=api.StateStore(state_dir)) as uploader:

        def pause_after_a_part(event: api.Event) -> None:
            if isinstance(event, api.PartDone):
                uploader.pause()

        uploader.subscribe(pause_after_a_part)
        assert uploader.run().status == "paused"
    if control is None:
        plane.close()
    return path


@dataclass
class Recorder:
    """A host that records every request's ``Authorization`` header and refuses each one
    (401), so a client that reaches it stops at once instead of retrying."""

    url: str
    authorizations: list[str] = field(default_factory=list)
    """The ``Authorization`` header of every request received ("" for none)."""


@contextmanager
def recording_host() -> Iterator[Recorder]:
    """A recorder listening on a free loopback port while the block runs."""
    seen: list[str] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = json.dumps({"detail": "unknown API key"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _refuse

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``authorizations`` instead."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Recorder(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
