"""Signing through the load balancer at 1, 2 and 3 replicas: throughput and p99, as ratios
against one replica in the same run.

The deployment README.md describes, on loopback: moto's S3 server (its own process), one
Redis holding the limits (Debian ``redis-server``), ``streamify serve`` replicas behind
HAProxy (Debian ``haproxy``; the test tier's harness, ``tests/lb/_cluster.py``). The
limits are lifted so the service's own cost is measured. ``--clients`` client processes,
each with ``--threads`` threads, call ``POST /v1/uploads/{id}/sign`` with one part back to
back through HAProxy for ``--seconds``.

Every process shares this machine's cores: the ratios say how far replicas help on it,
not on a machine with a core per replica (the report prints the core count).

    python benchmarks/replicas.py [--seconds 8] [--clients 4] [--threads 8]
                                  [--replicas 1,2,3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx
from _shared import REGION, moto_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.lb._cluster import Cluster, principal
from tests.redis_server import RedisServer

BUCKET = "replicas-bench"
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


def _client(url: str, token: str, upload_id: str, threads: int, seconds: float,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from concurrent.futures import ThreadPoolExecutor

    stop = time.monotonic() + seconds
    body = {"key": "alice/load.bin", "parts": [{"number": 1}]}

    def loop(_: int) -> tuple[list[float], int]:
        latencies: list[float] = []
        failed = 0
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                answer = client.post(f"/v1/uploads/{upload_id}/sign", json=body)
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failed += 1
        return latencies, failed

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(loop, range(threads)))
    out.put(([t for r in results for t in r[0]], sum(r[1] for r in results)))


def measure(endpoint: str, redis: RedisServer, replicas: int,
            args: argparse.Namespace) -> tuple[float, float, float, int]:
    """(signed URLs per second, p50 ms, p99 ms, failed calls) at ``replicas``."""
    token = "stfy_" + secrets.token_urlsafe(24)
    settings = {
        "bucket": BUCKET, "s3_endpoint_url": endpoint, "region": REGION,
        "cookie_secret": secrets.token_urlsafe(32), "principals": [principal("alice", token)],
        "redis_url": redis.url, "rate_limit": 100_000, "rate_burst": 1_000_000,
        "max_in_flight": 10_000, "max_open_uploads": 100_000,
    }
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="replicas-")), settings, replicas)
    try:
        cluster.start()
        created = httpx.post(f"{cluster.url}/v1/uploads", timeout=30,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"key": "alice/load.bin", "size": 100 * 1024**2})
        created.raise_for_status()
        upload_id = created.json()["upload_id"]
        out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        workers = [multiprocessing.Process(
            target=_client, args=(cluster.url, token, upload_id, args.threads,
                                  args.seconds, out)) for _ in range(args.clients)]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=args.seconds + 120) for _ in workers]
        for worker in workers:
            worker.join()
    finally:
        cluster.close()
    latencies = sorted(t for r in results for t in r[0])
    failed = sum(r[1] for r in results)
    if not latencies:
        raise SystemExit(f"no sign call succeeded at {replicas} replicas ({failed} failed)")
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / args.seconds, p50, p99, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per client process")
    parser.add_argument("--replicas", default="1,2,3")
    args = parser.parse_args()
    os.environ.update(MOTO_CREDENTIALS)
    counts = [int(n) for n in args.replicas.split(",")]
    rows = []
    with moto_server() as endpoint, RedisServer() as redis:
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
            Bucket=BUCKET)
        for replicas in counts:
            rows.append((replicas, *measure(endpoint, redis, replicas, args)))
    base = rows[0][1]
    print(f"# Signing through HAProxy, {args.clients}x{args.threads} clients, "
          f"{args.seconds:g} s each; {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print("| replicas | URLs/s | vs 1 | p50 ms | p99 ms | failed |")
    print("|---:|---:|---:|---:|---:|---:|")
    for replicas, rate, p50, p99, failed in rows:
        print(f"| {replicas} | {rate:.0f} | {rate / base:.2f}x | {p50:.1f} | {p99:.1f} "
              f"| {failed} |")


if __name__ == "__main__":
    main()
