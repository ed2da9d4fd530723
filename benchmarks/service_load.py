"""Fair signing under load: N principals sign at full speed while one client polls /healthz.

Starts moto (its own process) and ``streamify serve --workers W`` (a real uvicorn in child
processes) with N+1 principals, then, for each scenario side by side:

- N load processes, one per principal, each with ``--threads`` threads that call
  ``POST /v1/uploads/{id}/sign`` with ``--parts`` parts back to back for ``--seconds``
  (no pause after a 429: an abusive client);
- one process polling ``GET /healthz`` every 50 ms, as a load balancer would.

It reports presigned URLs per second (parts in 200 answers), p50/p99 latency of the sign
calls and of /healthz (and the slowest /healthz), and how many sign calls got 429. The
scenarios are 1 and 2 workers, with the service's default rate limit and with the rate
limit lifted (so that signing saturates the CPU and only the bounded signing threads and
the event-loop /healthz keep the instance answering).

    python benchmarks/service_load.py [--principals 4] [--threads 4] [--parts 10]
                                      [--seconds 10] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from _shared import REGION, moto_server
from streamify.server import hash_api_key

BUCKET = "load"
HEALTH_INTERVAL = 0.05
STARTUP_TIMEOUT = 60.0
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "load", "AWS_SECRET_ACCESS_KEY": "load-secret"}


@dataclass(frozen=True)
class Scenario:
    workers: int
    rate_limited: bool

    @property
    def name(self) -> str:
        limit = "default rate limit" if self.rate_limited else "no rate limit"
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, {limit}"


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    seconds: float
    signed_urls: int
    sign_ok: list[float]
    sign_429: int
    sign_other: int
    health: list[float]
    health_failures: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _token(index: int) -> str:
    return f"load-key-{index:04d}-0123456789abcdef"


@contextlib.contextmanager
def _service(endpoint: str, principals: int, scenario: Scenario,
             extra: dict[str, object] | None = None) -> Iterator[str]:
    """``streamify serve`` with ``principals`` principals (``p0/``, ``p1/``...), and the
    ``extra`` settings."""
    settings: dict[str, object] = {
        "bucket": BUCKET, "s3_endpoint_url": endpoint, "region": REGION,
        "cookie_secret": "load-benchmark-cookie-secret-0123456789",
        "principals": [{"name": f"p{i}", "key_sha256": hash_api_key(_token(i)),
                        "prefix": f"p{i}/"} for i in range(principals)],
    }
    if not scenario.rate_limited:
        settings.update(rate_limit=100_000, rate_burst=100_000)
    settings.update(extra or {})
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "streamify.json"
        config.write_text(json.dumps(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env.update(MOTO_CREDENTIALS)
        child = subprocess.Popen(
            [sys.executable, "-m", "streamify", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(scenario.workers), "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("`streamify serve` did not start")
                time.sleep(0.1)
            yield url
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _sign_load(url: str, index: int, upload_id: str, threads: int, parts: int,
               seconds: float) -> tuple[list[float], int, int, int]:
    """One principal at full speed: (latencies of 200s, URLs signed, 429s, other)."""
    key = f"p{index}/load.bin"
    body = {"key": key, "parts": [{"number": n} for n in range(1, parts + 1)]}
    stop = time.monotonic() + seconds

    def loop() -> tuple[list[float], int, int, int]:
        ok: list[float] = []
        urls = limited = other = 0
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Authorization": f"Bearer {_token(index)}"}) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                answer = client.post(f"/v1/uploads/{upload_id}/sign", json=body)
                if answer.status_code == 200:
                    ok.append(time.perf_counter() - started)
                    urls += len(answer.json()["parts"])
                elif answer.status_code == 429:
                    limited += 1
                else:
                    other += 1
        return ok, urls, limited, other

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: loop(), range(threads)))
    return ([t for r in results for t in r[0]], sum(r[1] for r in results),
            sum(r[2] for r in results), sum(r[3] for r in results))


def _health_load(url: str, seconds: float, path: str = "/healthz", token: str | None = None,
                 interval: float = HEALTH_INTERVAL) -> tuple[list[float], int]:
    """``GET path`` every ``interval`` (with ``token`` as bearer key): latencies of the
    200s, and how many failed."""
    latencies: list[float] = []
    failures = 0
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                ok = client.get(path).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1
            time.sleep(interval)
    return latencies, failures


def run(endpoint: str, scenario: Scenario, args: argparse.Namespace) -> Result:
    with _service(endpoint, args.principals, scenario) as url:
        upload_ids = []
        for index in range(args.principals):
            created = httpx.post(f"{url}/v1/uploads", timeout=30,
                                 headers={"Authorization": f"Bearer {_token(index)}"},
                                 json={"key": f"p{index}/load.bin", "size": 1})
            created.raise_for_status()
            upload_ids.append(created.json()["upload_id"])
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.principals + 1) as pool:
            health = pool.apply_async(_health_load, (url, args.seconds))
            loads = [pool.apply_async(_sign_load, (url, index, upload_ids[index], args.threads,
                                                   args.parts, args.seconds))
                     for index in range(args.principals)]
            signs = [load.get(timeout=args.seconds + 300) for load in loads]
            health_latencies, health_failures = health.get(timeout=args.seconds + 300)
    return Result(scenario=scenario, seconds=args.seconds,
                  signed_urls=sum(s[1] for s in signs),
                  sign_ok=[t for s in signs for t in s[0]],
                  sign_429=sum(s[2] for s in signs), sign_other=sum(s[3] for s in signs),
                  health=health_latencies, health_failures=health_failures)


def _ms(values: list[float], fraction: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]:.0f}"


def report(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"{args.principals} principals x {args.threads} threads, {args.parts} parts per sign "
        f"call, {args.seconds:g} s per scenario; /healthz polled every "
        f"{1000 * HEALTH_INTERVAL:.0f} ms. Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| scenario | URLs/s | sign calls 200 | sign p50 ms | sign p99 ms | 429 | other "
        "| healthz p50 ms | healthz p99 ms | healthz max ms | healthz failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario.name} | {r.signed_urls / r.seconds:,.0f} | {len(r.sign_ok):,} "
            f"| {_ms(r.sign_ok, 0.5)} | {_ms(r.sign_ok, 0.99)} | {r.sign_429:,} "
            f"| {r.sign_other} | {_ms(r.health, 0.5)} | {_ms(r.health, 0.99)} "
            f"| {_ms(r.health, 1.0)} | {r.health_failures} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--principals", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="concurrent calls per principal")
    parser.add_argument("--parts", type=int, default=10, help="parts per sign call")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to compare")
    args = parser.parse_args()
    scenarios = [Scenario(int(w), limited) for limited in (True, False)
                 for w in args.workers.split(",")]
    with moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=BUCKET)
        results = []
        for scenario in scenarios:
            results.append(run(endpoint, scenario, args))
            for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
            print(f"done: {scenario.name}", file=sys.stderr)
        s3.delete_bucket(Bucket=BUCKET)
    print(report(results, args))


if __name__ == "__main__":
    main()
