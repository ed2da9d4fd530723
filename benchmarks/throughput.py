"""Upload throughput and client CPU per GiB: every contender in one run, interleaved.

Each upload runs in a child process of its own; its CPU (user + system) and peak resident
set come from ``wait4`` on that child, its speed from the wall time around it. Rounds are
interleaved (ceiling, streamify, boto3, ... then again), so a slow moment of the shared
machine falls on every contender alike. Medians over the rounds; ratios to the raw ceiling.

    source /tmp/rgw.env   # S3_ENDPOINT_URL and the AWS credentials of a real S3 server
    flock /tmp/streamify-heavy.lock python benchmarks/throughput.py --size 1GiB --rounds 3

Contenders (``--only`` picks some): ``ceiling`` (presigned PUTs with ``http.client``, one
connection per thread, no hashing, no bookkeeping: what the wire and the server allow),
``streamify`` (``streamify upload``, direct, Content-MD5 on every part), ``streamify-api``
(the same through ``streamify serve`` in front of the same S3), ``boto3`` (``upload_file``)
and ``s3fs`` (``put_file``); all with the same part size and concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _shared import REGION, MiB, upload_with, write_file

__all__ = ["main"]

GiB = 1024 * MiB
CONTENDERS = ("ceiling", "streamify", "streamify-api", "boto3", "s3fs")


@dataclass(frozen=True)
class Run:
    contender: str
    seconds: float
    cpu: float
    peak_rss: int


def ceiling(path: str, bucket: str, key: str, endpoint: str, part_size: int,
            concurrency: int) -> None:
    """Presigned part PUTs through ``http.client``: no hashing, no state, no retries."""
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    size = os.path.getsize(path)
    count = -(-size // part_size)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    urls = [s3.generate_presigned_url("upload_part", Params={
        "Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}, ExpiresIn=3600)
        for n in range(1, count + 1)]
    local = threading.local()
    fd = os.open(path, os.O_RDONLY)

    def put(number: int) -> dict[str, Any]:
        url = urllib.parse.urlsplit(urls[number - 1])
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(url.netloc, timeout=120)
        body = os.pread(fd, part_size, (number - 1) * part_size)
        local.conn.request("PUT", f"{url.path}?{url.query}", body=body,
                           headers={"Content-Length": str(len(body))})
        answer = local.conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"part {number}: HTTP {answer.status}")
        return {"PartNumber": number, "ETag": answer.getheader("ETag")}

    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(put, range(1, count + 1)))
    os.close(fd)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})  # type: ignore[typeddict-item]


def child_main(args: argparse.Namespace) -> None:
    """One upload in this (child) process."""
    if args.child == "ceiling":
        ceiling(args.path, args.bucket, args.key, args.endpoint, args.part_size,
                args.concurrency)
    else:
        upload_with(args.child, args.path, args.bucket, args.key, args.endpoint,
                    args.part_size, args.concurrency)


def command(contender: str, path: str, bucket: str, key: str, endpoint: str, part_size: int,
            concurrency: int, api: tuple[str, str] | None, state_dir: str) -> list[str]:
    if contender in ("streamify", "streamify-api"):
        where = (["--api", api[0], "--token", api[1]] if contender == "streamify-api" and api
                 else ["--endpoint-url", endpoint])
        return [sys.executable, "-m", "streamify", "upload", *where, "--no-progress",
                "--state-dir", state_dir, "--part-size", str(part_size),
                "--concurrency", str(concurrency), path, f"s3://{bucket}/{key}"]
    return [sys.executable, __file__, "--child", contender, "--path", path, "--bucket", bucket,
            "--key", key, "--endpoint", endpoint, "--part-size", str(part_size),
            "--concurrency", str(concurrency)]


def measure(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS bytes of one child."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}... failed: {errors[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


@contextmanager
def api_service(endpoint: str) -> Iterator[tuple[str, str, str]]:
    """``streamify serve`` before the same S3, with its own bucket: (url, token, bucket)."""
    from sign_throughput import real_s3_stack

    with real_s3_stack(endpoint) as stack:
        yield stack.api_url, stack.token, stack.bucket


def report(runs: list[Run], size: int, args: argparse.Namespace, endpoint: str) -> str:
    rows = []
    by: dict[str, list[Run]] = {}
    for run in runs:
        by.setdefault(run.contender, []).append(run)
    medians = {name: (size / MiB / statistics.median(r.seconds for r in rs),
                      statistics.median(r.cpu for r in rs) * GiB / size,
                      max(r.peak_rss for r in rs) / MiB) for name, rs in by.items()}
    base = medians.get("ceiling")
    for name, (speed, cpu, rss) in medians.items():
        ratio = f"{speed / base[0]:.2f}x" if base else ""
        extra = f"{cpu - base[1]:+.2f}" if base else ""
        rows.append(f"| {name:13} | {speed:7.1f} | {ratio:7} | {cpu:6.2f} | {extra:7} | "
                    f"{rss:6.0f} | {len(by[name])} |")
    return "\n".join([
        f"{size / GiB:g} GiB, {args.concurrency} x {args.part_size // MiB} MiB parts, "
        f"S3 at {endpoint}; {platform.node()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| contender     |   MiB/s | vs ceiling | CPU-s/GiB | vs ceiling | peak RSS MiB | runs |",
        "|---------------|--------:|-----------:|----------:|-----------:|-------------:|-----:|",
        *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-size", type=lambda v: int(v), default=8 * MiB)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    parser.add_argument("--child"), parser.add_argument("--path")
    parser.add_argument("--bucket"), parser.add_argument("--key")
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if not args.endpoint:
        raise SystemExit("set S3_ENDPOINT_URL (source /tmp/rgw.env) or pass --endpoint")
    from streamify import parse_size

    size = parse_size(args.size)
    contenders = args.only.split(",")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        url, token, bucket = stack.enter_context(api_service(args.endpoint))
        path = str(Path(tmp) / "source.bin")
        write_file(Path(path), size)
        import boto3

        s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION)
        runs: list[Run] = []
        for round_ in range(args.rounds):
            for contender in contenders:
                key = f"throughput/{contender}-{uuid.uuid4().hex[:8]}"
                argv = command(contender, path, bucket, key, args.endpoint, args.part_size,
                               args.concurrency, (url, token), str(Path(tmp) / "state"))
                seconds, cpu, rss = measure(argv)
                runs.append(Run(contender, seconds, cpu, rss))
                print(json.dumps({"round": round_ + 1, "contender": contender,
                                  "MiB/s": round(size / MiB / seconds, 1),
                                  "cpu_s": round(cpu, 2), "rss_mib": rss // MiB}),
                      file=sys.stderr, flush=True)
                s3.delete_object(Bucket=bucket, Key=key)
        print(report(runs, size, args, args.endpoint))


if __name__ == "__main__":
    main()
