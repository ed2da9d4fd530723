"""Running the real ``streamify`` CLI against the real S3 server, and killing it mid-way."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import Bucket

MiB = 1024 * 1024


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        """The ``--json`` result line of a single-file upload."""
        assert self.returncode == 0, self.stderr
        lines = self.stdout.strip().splitlines()
        assert len(lines) == 1, self.stdout
        data: dict[str, Any] = json.loads(lines[0])
        return data

    @property
    def error_line(self) -> str:
        """The one line a failed command printed on stderr."""
        assert self.returncode != 0, self.stdout
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("streamify: error: "), lines[0]
        return lines[0]


def upload_command(source: Path, destination: str, endpoint: str, *options: str) -> list[str]:
    """``streamify upload`` with a JSON result and no bar, as a script would run it."""
    return [sys.executable, "-m", "streamify", "upload", str(source), destination,
            "--endpoint-url", endpoint, "--json", "--no-progress", *options]


def cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    env.update(STREAMIFY_STATE_DIR=str(state_dir), AWS_DEFAULT_REGION="us-east-1", **extra)
    return env


def run_cli(command: Sequence[str], env: dict[str, str], timeout: float = 120) -> CliRun:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return CliRun(done.returncode, done.stdout, done.stderr)


def open_upload_id(bucket: Bucket, key: str) -> str | None:
    uploads = [u for u in bucket.open_uploads() if u["Key"] == key]
    assert len(uploads) <= 1, uploads
    return uploads[0]["UploadId"] if uploads else None


def listed_parts(bucket: Bucket, key: str, upload_id: str) -> dict[int, int]:
    """Part number -> size, for every part the server holds (all pages)."""
    parts: dict[int, int] = {}
    marker = 0
    while True:
        page = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload_id,
                                        PartNumberMarker=marker)
        parts.update({p["PartNumber"]: p["Size"] for p in page.get("Parts", [])})
        if not page.get("IsTruncated"):
            return parts
        marker = int(page["NextPartNumberMarker"])


@dataclass
class Killed:
    upload_id: str
    parts_seen: dict[int, int]
    """The last listing taken before the kill."""
    parts_after: dict[int, int]
    """The listing once the process was dead."""


def kill_when(command: Sequence[str], env: dict[str, str], bucket: Bucket, key: str,
              ready: Callable[[dict[int, int]], bool], timeout: float = 60) -> Killed:
    """Start ``command``, watch ListParts, SIGKILL the process as soon as ``ready(parts)``."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        upload_id = None
        parts: dict[int, int] = {}
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"the upload ended (exit {process.returncode}) before the "
                                     f"kill point: lower --bwlimit\n{out}{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the kill point was not reached in {timeout} s "
                                     f"(parts seen: {sorted(parts)})")
            upload_id = upload_id or open_upload_id(bucket, key)
            if upload_id is not None:
                parts = listed_parts(bucket, key, upload_id)
                if ready(parts):
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert upload_id is not None
    # Give the server a moment to drop the bodies that were cut short.
    time.sleep(0.5)
    return Killed(upload_id, parts, listed_parts(bucket, key, upload_id))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def object_sha256(bucket: Bucket, key: str) -> str:
    """SHA-256 of an object, streamed (never the whole object in memory)."""
    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(4 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def object_exists(bucket: Bucket, key: str) -> bool:
    listing = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix=key)
    return any(item["Key"] == key for item in listing.get("Contents", []))
