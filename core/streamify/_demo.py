"""``streamify demo``: the whole story on a laptop, against an embedded S3 emulator.

Starts moto's S3 server on loopback, generates a video-sized file, starts
``streamify upload`` in a child process, kills it (SIGKILL) partway, runs the very same
command again, and checks the object's SHA-256 against the file's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import click

from ._units import format_size, parse_size

__all__ = ["demo"]

BUCKET = "streamify-demo"
KEY = "videos/holiday.mp4"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_video(path: str, size: int) -> str:
    """Write ``size`` random bytes (incompressible, like video) and return their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, 8 * 1024 * 1024))
            digest.update(block)
            fh.write(block)
            left -= len(block)
    return digest.hexdigest()


def _parts_in_s3(client: Any) -> int:
    """How many parts the open upload of the demo's key holds (0 before it starts)."""
    uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    if not uploads:
        return 0
    listed = client.list_parts(Bucket=BUCKET, Key=KEY, UploadId=uploads[0]["UploadId"])
    return len(listed.get("Parts", []))


def _parts_after_kill(client: Any) -> int:
    """What S3 holds once the killed process's last requests have settled: a part whose
    body had fully arrived still lands after the kill, and the resume will count it."""
    count = _parts_in_s3(client)
    while True:
        time.sleep(0.2)
        again = _parts_in_s3(client)
        if again == count:
            return count
        count = again


def _say(text: str) -> None:
    click.echo(click.style("==> ", fg="cyan", bold=True) + text)


@click.command()
@click.option("--size", default="300MiB", show_default=True, help="Size of the test video.")
@click.option("--kill-at", default=0.5, show_default=True,
              help="Fraction of the parts in S3 at which the first attempt is killed.")
def demo(size: str, kill_at: float) -> None:
    """Upload a generated video to an embedded S3 emulator, kill the upload halfway,
    resume it, and verify the result."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise click.ClickException(
            "the demo needs the embedded S3 emulator: pip install 'streamify[server]'") from None
    from ._s3control import s3_client

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's request log
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="streamify-demo-") as work:
            _run_demo(work, endpoint, parse_size(size), kill_at, s3_client(endpoint_url=endpoint))
    finally:
        server.stop()


def _run_demo(work: str, endpoint: str, size: int, kill_at: float, client: Any) -> None:
    _say(f"S3 emulator (moto) listening on {endpoint}; bucket s3://{BUCKET}")
    client.create_bucket(Bucket=BUCKET)
    video = os.path.join(work, "holiday.mp4")
    _say(f"writing a {format_size(size)} test video to {video}")
    source_sha = _write_video(video, size)

    env = {**os.environ, "STREAMIFY_STATE_DIR": os.path.join(work, "state")}
    command = [sys.executable, "-m", "streamify", "upload", video, f"s3://{BUCKET}/{KEY}",
               "--endpoint-url", endpoint, "--part-size", "8MiB", "--concurrency", "4",
               "--json"]
    parts_total = -(-size // (8 * 1024 * 1024))
    # Throttled so the interruption visibly lands partway even on a fast machine.
    _say(f"attempt 1: streamify upload ({parts_total} parts of 8 MiB, 4 at a time, "
         "throttled to 64 MiB/s)")
    child = subprocess.Popen([*command, "--no-progress", "--bwlimit", "64MiB"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while child.poll() is None:
        if _parts_in_s3(client) >= parts_total * kill_at:
            child.send_signal(signal.SIGKILL)
            child.wait()
            break
        time.sleep(0.05)
    if child.returncode == -signal.SIGKILL:
        _say(f"killed the upload process (SIGKILL) with {_parts_after_kill(client)} of "
             f"{parts_total} parts in S3, as a crash or a dropped laptop lid would")
    else:
        _say(f"attempt 1 ended by itself before it could be killed (exit {child.returncode})")

    _say("attempt 2: the very same command again")
    rerun = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if rerun.returncode != 0:
        raise click.ClickException("the resumed upload failed (see its error above)")
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    if result["resumed"]:
        _say(f"it found the open upload, verified {format_size(result['bytes_resumed'])} already "
             f"in S3 against the file, and sent only the missing "
             f"{format_size(result['bytes_sent'])}")
    else:
        _say(f"nothing to resume; it sent {format_size(result['bytes_sent'])}")

    digest = hashlib.sha256()
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    for chunk in iter(lambda: body.read(8 * 1024 * 1024), b""):
        digest.update(chunk)
    if digest.hexdigest() != source_sha:
        raise click.ClickException("the object in S3 does not match the file (SHA-256 differs)")
    _say(f"verified: s3://{BUCKET}/{KEY} has the file's SHA-256 {source_sha[:16]}... "
         f"(ETag {result['etag']})")
    saved = 1 - result["bytes_sent"] / size
    click.echo(f"\nDone. The upload survived a crash: {saved:.0%} of the file was not sent again, "
               "and the object is byte-for-byte the file.")
