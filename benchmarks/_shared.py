"""What the benchmark scripts share: the alternatives' upload calls, test files, moto.

Imported by the scripts beside it (``python benchmarks/NAME.py`` puts this folder first on
``sys.path``).
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["ALTERNATIVES", "REGION", "MiB", "moto_server", "upload_with", "write_file"]

MiB = 1024 * 1024
REGION = "us-east-1"
ALTERNATIVES = ("boto3", "s3fs")


def _client_config(concurrency: int) -> Any:
    from botocore.config import Config as BotoConfig

    # Radosgw (like several S3 servers) rejects botocore's default aws-chunked trailing
    # checksums; "when_required" is also what Streamify's own client uses.
    return BotoConfig(signature_version="s3v4", max_pool_connections=max(10, concurrency),
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      s3={"addressing_style": "path"})


def upload_with(tool: str, path: str, bucket: str, key: str, endpoint: str, part_size: int,
                concurrency: int) -> None:
    """Upload ``path`` with an alternative (``boto3`` upload_file or ``s3fs`` put_file),
    with the same part size and concurrency Streamify is given."""
    if tool == "boto3":
        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                              config=_client_config(concurrency))
        transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                  max_concurrency=concurrency, use_threads=True)
        client.upload_file(path, bucket, key, Config=transfer)
    elif tool == "s3fs":
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=endpoint, client_kwargs={"region_name": REGION},
                               config_kwargs={
                                   "request_checksum_calculation": "when_required",
                                   "response_checksum_validation": "when_required",
                                   "s3": {"addressing_style": "path"}})
        fs.put_file(path, f"{bucket}/{key}", chunksize=part_size, max_concurrency=concurrency)
    else:
        raise SystemExit(f"unknown tool {tool!r}")


def write_file(path: Path, size: int) -> None:
    """Pseudo-random bytes (incompressible), 1 MiB blocks each made unique by a counter."""
    block = random.Random(0).randbytes(MiB)
    with open(path, "wb") as fh:
        for counter in range(-(-size // MiB)):
            fh.write((counter.to_bytes(8, "big") + block)[: min(MiB, size - counter * MiB)])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process (so its memory is not the client's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)
