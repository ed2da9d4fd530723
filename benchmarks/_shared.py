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

__all__ = ["ALTERNATIVES", "REGION", "MiB", "moto_server", "rclone_env", "upload_with",
           "write_file"]

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
    elif tool == "obstore":
        _obstore_put(path, bucket, key, endpoint, part_size, concurrency)
    elif tool == "crt":
        _crt_upload(path, bucket, key, endpoint, part_size, concurrency)
    else:
        raise SystemExit(f"unknown tool {tool!r}")


def _credentials() -> tuple[str, str]:
    import boto3

    frozen = boto3.Session().get_credentials()
    if frozen is None:
        raise SystemExit("no AWS credentials: source /tmp/rgw.env or set AWS_ACCESS_KEY_ID")
    creds = frozen.get_frozen_credentials()
    return str(creds.access_key), str(creds.secret_key)


def _obstore_put(path: str, bucket: str, key: str, endpoint: str, part_size: int,
                 concurrency: int) -> None:
    """obstore (Rust ``object_store``): ``put`` of a local path, no integrity header."""
    import obstore
    from obstore.store import S3Store

    access_key, secret_key = _credentials()
    store = S3Store(bucket, endpoint=endpoint, region=REGION, access_key_id=access_key,
                    secret_access_key=secret_key, virtual_hosted_style_request=False,
                    client_options={"allow_http": True})
    obstore.put(store, key, Path(path), chunk_size=part_size, max_concurrency=concurrency)


def _crt_upload(path: str, bucket: str, key: str, endpoint: str, part_size: int,
                concurrency: int) -> None:
    """The AWS CRT S3 client through s3transfer's ``CRTTransferManager``: the very manager
    boto3 returns for ``TransferConfig(preferred_transfer_client="crt")``.

    boto3's own path cannot be pointed at another endpoint: ``boto3/crt.py`` builds the
    request serializer with ``endpoint_url=None`` and the CRT client with ``use_ssl=True``,
    so ``upload_file`` would address AWS whatever the client's ``endpoint_url`` says. Here
    the same two objects are built with the endpoint and, for ``http://``, TLS off.
    """
    import botocore.session
    from boto3.s3.transfer import TransferConfig
    from s3transfer.crt import (
        BotocoreCRTCredentialsWrapper,
        BotocoreCRTRequestSerializer,
        CRTTransferManager,
        create_s3_crt_client,
    )

    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SystemExit("no AWS credentials: source /tmp/rgw.env or set AWS_ACCESS_KEY_ID")
    provider = BotocoreCRTCredentialsWrapper(credentials).to_crt_credentials_provider()
    crt_client = create_s3_crt_client(REGION, crt_credentials_provider=provider,
                                      part_size=part_size,
                                      use_ssl=endpoint.startswith("https://"))
    serializer = BotocoreCRTRequestSerializer(session, {
        "region_name": REGION, "endpoint_url": endpoint,
        "config": _client_config(concurrency)})
    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                            max_concurrency=concurrency, preferred_transfer_client="crt")
    with CRTTransferManager(crt_client, serializer, config=config) as manager:
        manager.upload(path, bucket, key).result()


def rclone_env(endpoint: str) -> dict[str, str]:
    """The environment that defines rclone's remote ``bench:`` (S3 at ``endpoint``, the
    credentials of the standard AWS chain): no configuration file."""
    import os

    access_key, secret_key = _credentials()
    # rclone's AWS SDK refuses AWS_CA_BUNDLE with rclone's own HTTP transport
    # ("LoadCustomCABundleError ... unsupported transport"); the other contenders take it.
    inherited = {name: value for name, value in os.environ.items() if name != "AWS_CA_BUNDLE"}
    return dict(inherited, RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_BENCH_TYPE="s3",
                RCLONE_CONFIG_BENCH_PROVIDER="Ceph", RCLONE_CONFIG_BENCH_ENDPOINT=endpoint,
                RCLONE_CONFIG_BENCH_REGION=REGION,
                RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=access_key,
                RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=secret_key)


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
