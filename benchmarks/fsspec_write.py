"""A streamed write of unknown size through fsspec: ``streamify://`` beside s3fs.

The same program writes the same bytes (1 MiB ``write`` calls, each block made unique by a
counter) to ``fsspec.open(URL, "wb")``, with the same part size and concurrency for both:

- ``streamify``: ``fsspec.open("streamify://bucket/key", "wb", endpoint_url=...,
  part_size=P, concurrency=C)``, Streamify's streamed writer (parts sent in parallel while
  the program keeps writing, memory bounded by about concurrency x part size);
- ``s3fs``: ``fsspec.open("s3://bucket/key", "wb", default_block_size=P,
  max_concurrency=C)`` (s3fs ``S3File``).

Each write runs in a fresh child process, so its peak resident set (``ru_maxrss`` from
``wait4`` on that very child) and its CPU time (user + system) are its own. Reported: MiB/s
of the whole write (open to close, the object complete), peak RSS, CPU seconds per GiB,
and the ratios to Streamify.

The endpoint is ``--endpoint``, else ``$S3_ENDPOINT_URL``, else a moto server in its own
process. Every object is deleted right after its run; ``--between`` runs a shell command
after each deletion (radosgw: its garbage collector).

    python benchmarks/fsspec_write.py [--size 1GiB] [--part-size 8MiB] [--concurrency 4]
        [--endpoint URL] [--between CMD]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from _shared import REGION, MiB, moto_server

TOOLS = ("streamify", "s3fs")
GiB = 1024 * MiB


@dataclass(frozen=True)
class Run:
    tool: str
    seconds: float
    peak_rss: int
    cpu_seconds: float


# ---------------------------------------------------------------------- the child side
def open_for_writing(tool: str, endpoint: str, bucket: str, key: str, part_size: int,
                     concurrency: int) -> Any:
    import fsspec

    if tool == "streamify":
        return fsspec.open(f"streamify://{bucket}/{key}", "wb", endpoint_url=endpoint,
                           client_kwargs={"region_name": REGION}, part_size=part_size,
                           concurrency=concurrency, skip_instance_cache=True)
    if tool == "s3fs":
        # Streamify's own client settings (radosgw refuses botocore's aws-chunked bodies).
        return fsspec.open(f"s3://{bucket}/{key}", "wb", endpoint_url=endpoint,
                           client_kwargs={"region_name": REGION}, default_block_size=part_size,
                           max_concurrency=concurrency, skip_instance_cache=True,
                           config_kwargs={"request_checksum_calculation": "when_required",
                                          "response_checksum_validation": "when_required",
                                          "s3": {"addressing_style": "path"}})
    raise SystemExit(f"unknown tool {tool!r}")


def child(tool: str, endpoint: str, bucket: str, key: str, size: int, part_size: int,
          concurrency: int) -> None:
    """Write ``size`` bytes with ``tool``; print the seconds from open to close."""
    block = os.urandom(MiB)
    started = time.monotonic()
    with open_for_writing(tool, endpoint, bucket, key, part_size, concurrency) as out:
        for counter in range(-(-size // MiB)):
            out.write((counter.to_bytes(8, "big") + block[8:])[: min(MiB, size - counter * MiB)])
    print(json.dumps({"seconds": time.monotonic() - started}))


# ---------------------------------------------------------------------- the parent side
def measure(command: list[str], *, timeout: float) -> Run:
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert process.stdout is not None
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        watchdog.cancel()
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{command[3]} failed: {errors.read()}")
    seconds = float(json.loads(output.strip().splitlines()[-1])["seconds"])
    return Run(command[3], seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


def run_all(args: argparse.Namespace, endpoint: str) -> list[Run]:
    from streamify._s3control import s3_client

    client = s3_client(endpoint_url=endpoint, region=REGION)
    bucket = f"bench-fsspec-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    runs = []
    try:
        for tool in args.tools:
            key = f"{tool}.bin"
            print(f"{tool} ...", file=sys.stderr)
            command = [sys.executable, os.path.abspath(__file__), "--child", tool, endpoint,
                       bucket, key, str(args.size), str(args.part_size), str(args.concurrency)]
            try:
                run = measure(command, timeout=args.timeout)
                stored = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
                if stored != args.size:
                    raise RuntimeError(f"{tool} stored {stored} bytes, not {args.size}")
            finally:
                cleanup(client, bucket, args.between)
            runs.append(run)
    finally:
        cleanup(client, bucket, args.between)
        client.delete_bucket(Bucket=bucket)
    return runs


def cleanup(client: Any, bucket: str, between: str | None) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    if between:
        subprocess.run(between, shell=True, check=True, stdout=subprocess.DEVNULL)  # noqa: S602


def report(runs: list[Run], args: argparse.Namespace, endpoint: str) -> str:
    ours = next((r for r in runs if r.tool == "streamify"), runs[0])
    bound = 100 * MiB + args.concurrency * args.part_size
    lines = [
        f"{args.size / MiB:.0f} MiB written through fsspec.open(..., 'wb') to {endpoint}, "
        f"{args.concurrency} x {args.part_size // MiB} MiB parts; Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; Streamify's bound "
        f"{bound / MiB:.0f} MiB",
        "",
        "| tool      |  MiB/s | speed / streamify |  peak RSS | peak / streamify | CPU s/GiB |",
        "|-----------|-------:|------------------:|----------:|-----------------:|----------:|",
    ]
    for run in runs:
        speed = args.size / MiB / run.seconds
        lines.append(
            f"| {run.tool:<9} | {speed:>6.0f} | {ours.seconds / run.seconds:>16.2f}x | "
            f"{run.peak_rss / MiB:>5.0f} MiB | {run.peak_rss / ours.peak_rss:>15.2f}x | "
            f"{run.cpu_seconds / (args.size / GiB):>9.2f} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, endpoint, bucket, key, size, part_size, concurrency = sys.argv[2:9]
        child(tool, endpoint, bucket, key, int(size), int(part_size), int(concurrency))
        return
    from streamify import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default="1GiB")
    parser.add_argument("--part-size", type=parse_size, default="8MiB")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--tools", default=",".join(TOOLS),
                        type=lambda text: [t for t in text.split(",") if t])
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"),
                        help="S3 endpoint (default $S3_ENDPOINT_URL, else a moto server)")
    parser.add_argument("--between", default=None,
                        help="shell command to run after each object is deleted")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    if args.endpoint:
        print(report(run_all(args, args.endpoint), args, args.endpoint))
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    with moto_server() as endpoint:
        print(report(run_all(args, endpoint), args, endpoint))


if __name__ == "__main__":
    main()
