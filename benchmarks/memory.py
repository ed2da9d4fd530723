"""Peak memory of one large upload: Streamify beside boto3 (s3transfer) and s3fs.

Each upload runs in a fresh child process, and its peak resident set (the kernel's RSS
high-water mark, ``ru_maxrss`` from ``wait4`` on that very child) is what is reported, so
one tool's peak never hides another's. Side by side in one run, with the same part size
and concurrency for all three:

- ``streamify``: the real command, ``streamify upload --part-size P --concurrency C``;
- ``boto3``: ``S3Client.upload_file`` with ``TransferConfig(multipart_chunksize=P,
  max_concurrency=C)`` (s3transfer);
- ``s3fs``: ``S3FileSystem.put_file(chunksize=P, max_concurrency=C)``;
- and ``streamify --version`` alone: the command's imports, the constant part.

Streamify's promise is a peak below ``100 MiB + concurrency x part size`` whatever the
file size; the table says whether it holds, and the ratios to the alternatives.

The endpoint is ``--endpoint``, else ``$S3_ENDPOINT_URL``, else a moto server started here
in its own process (moto keeps objects in its own memory, which must not be counted).
Every object is deleted right after its run, then the bucket and the file at the end.
``--between`` runs a shell command after each deletion: a store that frees deleted data
lazily (radosgw garbage collection) can be told to free it before the next run.

    python benchmarks/memory.py [--size 2GiB] [--configs 4x8MiB,4x16MiB]
        [--endpoint URL] [--dir DIR] [--between CMD]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _shared import ALTERNATIVES, REGION, MiB, moto_server, upload_with, write_file

CONSTANT_ALLOWANCE = 100 * MiB
TOOLS = ("streamify", *ALTERNATIVES)


@dataclass(frozen=True)
class Config:
    concurrency: int
    part_size: int

    @classmethod
    def parse(cls, text: str) -> Config:
        from streamify import parse_size

        concurrency, _, part_size = text.partition("x")
        return cls(int(concurrency), parse_size(part_size))

    @property
    def bound(self) -> int:
        return CONSTANT_ALLOWANCE + self.concurrency * self.part_size

    def __str__(self) -> str:
        return f"{self.concurrency} x {self.part_size // MiB} MiB"


@dataclass(frozen=True)
class Run:
    tool: str
    config: Config | None
    peak_rss: int
    seconds: float


# ---------------------------------------------------------------------- the child side
def child(tool: str, path: str, bucket: str, key: str, endpoint: str, part_size: int,
          concurrency: int) -> None:
    """Upload ``path`` with ``tool`` and print the seconds the upload itself took."""
    started = time.monotonic()
    upload_with(tool, path, bucket, key, endpoint, part_size, concurrency)
    print(json.dumps({"seconds": time.monotonic() - started}))


# ---------------------------------------------------------------------- the parent side
def measure(command: list[str], *, timeout: float) -> tuple[dict[str, float], int]:
    """Run ``command``; return its JSON output and its peak RSS in bytes."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert process.stdout is not None
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        output = process.stdout.read()
        # wait4 on this very child gives its own high-water mark (RUSAGE_CHILDREN would be
        # the largest over every child waited for so far).
        _, status, usage = os.wait4(process.pid, 0)
        watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command[1:4])} failed (exit {process.returncode}, "
                               f"timeout {timeout:.0f} s): {errors.read()}")
    lines = output.strip().splitlines()
    return json.loads(lines[-1]), usage.ru_maxrss * 1024  # Linux reports KiB


def measure_idle() -> int:
    """Peak RSS of the ``streamify`` command doing nothing: its imports, the constant part."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, "-m", "streamify", "--version"],
                                   stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return int(usage.ru_maxrss) * 1024


def run_all(args: argparse.Namespace, endpoint: str) -> list[Run]:
    from streamify._s3control import s3_client

    client = s3_client(endpoint_url=endpoint, region=REGION)
    bucket = f"bench-memory-{uuid.uuid4().hex[:10]}"
    workdir = Path(tempfile.mkdtemp(prefix="streamify-memory-", dir=args.dir))
    source = workdir / "source.bin"
    runs: list[Run] = []
    client.create_bucket(Bucket=bucket)
    try:
        print(f"writing {args.size / MiB:.0f} MiB to {source}", file=sys.stderr)
        write_file(source, args.size)
        me = [sys.executable, os.path.abspath(__file__), "--child"]
        idle = measure_idle()
        runs.append(Run("idle", None, idle, 0.0))
        for config in args.configs:
            for tool in args.tools:
                key = f"{tool}-{config.concurrency}x{config.part_size}"
                if tool == "streamify":
                    command = [sys.executable, "-m", "streamify", "upload", str(source),
                               f"s3://{bucket}/{key}", "--endpoint-url", endpoint,
                               "--part-size", str(config.part_size), "--concurrency",
                               str(config.concurrency), "--json", "--no-progress",
                               "--state-dir", str(workdir / "state")]
                else:
                    command = [*me, tool, str(source), bucket, key, endpoint,
                               str(config.part_size), str(config.concurrency)]
                print(f"{tool} {config} ...", file=sys.stderr)
                try:
                    result, peak = measure(command, timeout=args.timeout)
                    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
                    if size != args.size:
                        raise RuntimeError(f"{tool} stored {size} bytes, not {args.size}")
                finally:
                    cleanup(client, bucket, args.between)
                runs.append(Run(tool, config, peak, float(result["seconds"])))
    finally:
        cleanup(client, bucket, args.between)
        client.delete_bucket(Bucket=bucket)
        shutil.rmtree(workdir)
    return runs


def cleanup(client: Any, bucket: str, between: str | None) -> None:
    """Delete every object and open upload in ``bucket``, then run the ``--between`` hook."""
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    if between:
        subprocess.run(between, shell=True, check=True, stdout=subprocess.DEVNULL)  # noqa: S602


def report(runs: list[Run], size: int, endpoint: str) -> str:
    idle = next(r for r in runs if r.tool == "idle")
    lines = [
        f"{size / MiB:.0f} MiB upload to {endpoint}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; `streamify --version` alone peaks at "
        f"{idle.peak_rss / MiB:.0f} MiB",
        "",
        f"| {'tool':<9} | {'concurrency x part':<18} | {'peak RSS':>9} | "
        f"{'bound':>9} | {'below':<5} | {'peak / streamify':>16} | {'MiB/s':>6} | "
        f"{'speed / streamify':>17} |",
        f"|{'-' * 11}|{'-' * 20}|{'-' * 11}|{'-' * 11}|{'-' * 7}|{'-' * 18}|{'-' * 8}|"
        f"{'-' * 19}|",
    ]
    for run in runs:
        if run.config is None:
            continue
        ours = next(r for r in runs if r.tool == "streamify" and r.config == run.config)
        below = "yes" if run.peak_rss < run.config.bound else "no"
        lines.append(
            f"| {run.tool:<9} | {run.config!s:<18} | {run.peak_rss / MiB:>5.0f} MiB | "
            f"{run.config.bound / MiB:>5.0f} MiB | {below:<5} | "
            f"{run.peak_rss / ours.peak_rss:>15.2f}x | {size / MiB / run.seconds:>6.0f} | "
            f"{ours.seconds / run.seconds:>16.2f}x |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        # Before anything else is imported: a child carries only its own tool.
        tool, path, bucket, key, endpoint, part_size, concurrency = sys.argv[2:9]
        child(tool, path, bucket, key, endpoint, int(part_size), int(concurrency))
        return
    from streamify import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default="2GiB")
    parser.add_argument("--configs", default="4x8MiB,4x16MiB",
                        type=lambda text: [Config.parse(c) for c in text.split(",")],
                        help="concurrency x part size, comma separated")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        type=lambda text: [t for t in text.split(",") if t])
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"),
                        help="S3 endpoint (default $S3_ENDPOINT_URL, else a moto server)")
    parser.add_argument("--dir", default=None, help="where to write the file (default: tmp)")
    parser.add_argument("--between", default=None,
                        help="shell command to run after each object is deleted")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one upload may take")
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    if args.endpoint:
        runs = run_all(args, args.endpoint)
        endpoint = args.endpoint
    else:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
        with moto_server() as endpoint:
            runs = run_all(args, endpoint)
    print(report(runs, args.size, endpoint))


if __name__ == "__main__":
    main()
