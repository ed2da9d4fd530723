"""Fair share: another principal's latency while one principal floods listings and creates.

Starts moto (its own process) with ``--objects`` objects under principal p0's prefix, and
``streamify serve`` (one worker) with two principals, then, side by side:

- quiet: p1 calls ``GET /v1/limits`` every 20 ms, nobody else calls;
- flooded: the same while p0 runs ``--listers`` threads listing its prefix
  (``GET /v1/objects?limit=1000``) and ``--creators`` threads starting uploads
  (``POST /v1/uploads``) back to back, each thread waiting out a 429 as its
  ``Retry-After`` says (as Streamify's own clients do);
- flooded, cap lifted: the same with ``max_in_flight`` raised to 10,000, to show what the
  per-principal cap on requests in flight does.

It reports p1's p50/p99/max latency, the flood's answers (200s, 429s, other), and what
the service process did meanwhile: the CPU time it used and the time its threads were
ready to run but waited for a CPU (the kernel's run-queue delay, ``/proc/PID/task/*/
schedstat``). With ``--service-cpu N`` the service runs on CPU N alone and everything else
(moto, the clients) on the other CPUs, as a deployed replica has its own CPU and S3 and
clients are elsewhere.

    python benchmarks/fair_share.py [--objects 2500] [--listers 50] [--creators 90]
                                    [--seconds 15] [--max-in-flight N] [--service-cpu N]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import platform
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from _shared import REGION, moto_server
from service_load import (
    BUCKET,
    MOTO_CREDENTIALS,
    Scenario,
    _health_load,
    _ms,
    _service,
    _token,
)

PROBE_INTERVAL = 0.02


@dataclass(frozen=True)
class Result:
    name: str
    probe: list[float]
    probe_failures: int
    flood: dict[str, int]
    service_cpu: float
    service_waited: float


def _service_pid(url: str) -> int:
    """The ``streamify serve`` process listening on ``url``'s port."""
    wanted = ["--port", url.rsplit(":", 1)[1]]
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            words = [a.decode() for a in argv]
            if "serve" in words and any(words[i:i + 2] == wanted for i in range(len(words))):
                return int(entry.name)
    raise RuntimeError(f"no `streamify serve` process listens at {url}")


class _Schedstat:
    """A process's CPU time and run-queue delay (nanoseconds), summed over its threads;
    threads are sampled while they live, so those that end are still counted."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[str, tuple[int, int]] = {}
        self.first: dict[str, tuple[int, int]] = {}

    def sample(self) -> None:
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                ran, waited = (int(x) for x in (task / "schedstat").read_text().split()[:2])
                self.first.setdefault(task.name, (ran, waited))
                self.seen[task.name] = (ran, waited)

    def totals(self) -> tuple[float, float]:
        """Seconds (CPU, waiting for a CPU) since each thread was first sampled."""
        ran = sum(now[0] - self.first[t][0] for t, now in self.seen.items())
        waited = sum(now[1] - self.first[t][1] for t, now in self.seen.items())
        return ran / 1e9, waited / 1e9


@contextlib.contextmanager
def _watched(pid: int) -> Iterator[_Schedstat]:
    stats = _Schedstat(pid)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.2):
            stats.sample()

    stats.sample()
    watcher = threading.Thread(target=loop, daemon=True)
    watcher.start()
    try:
        yield stats
    finally:
        stop.set()
        watcher.join()
        stats.sample()


def _flood(url: str, what: str, threads: int, seconds: float) -> dict[str, int]:
    """p0's ``threads`` threads calling ``what`` back to back: answers by status."""
    stop = time.monotonic() + seconds
    counts: dict[str, int] = {"200": 0, "429": 0, "other": 0}
    lock = threading.Lock()
    numbers = itertools.count()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=120,
                          headers={"Authorization": f"Bearer {_token(0)}"}) as client:
            while time.monotonic() < stop:
                try:
                    if what == "list":
                        answer = client.get("/v1/objects", params={"limit": 1000})
                    else:
                        answer = client.post("/v1/uploads", json={
                            "key": f"p0/new-{os.getpid()}-{next(numbers)}.bin", "size": 1})
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                kind = str(status) if status in (200, 429) else "other"
                with lock:
                    counts[kind] += 1
                if status == 429:
                    time.sleep(min(float(answer.headers["Retry-After"]),
                                   max(0.0, stop - time.monotonic())))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: loop(), range(threads)))
    return counts


def run(endpoint: str, name: str, args: argparse.Namespace, *, flood: bool,
        max_in_flight: int | None) -> Result:
    extra: dict[str, object] = {"max_open_uploads": 100_000}
    if max_in_flight is not None:
        extra["max_in_flight"] = max_in_flight
    with _service(endpoint, 2, Scenario(1, rate_limited=True), extra) as url:
        pid = _service_pid(url)
        if args.service_cpu is not None:
            for task in Path(f"/proc/{pid}/task").glob("*"):
                os.sched_setaffinity(int(task.name), {args.service_cpu})
        context = multiprocessing.get_context("spawn")
        with context.Pool(3) as pool:
            floods = [pool.apply_async(_flood, (url, what, threads, args.seconds + 1))
                      for what, threads in (("list", args.listers),
                                            ("create", args.creators))
                      if flood and threads]
            if flood:
                time.sleep(1.0)  # the flood is under way before p1 is timed
            with _watched(pid) as stats:
                probe = pool.apply_async(_health_load, (url, args.seconds, "/v1/limits",
                                                        _token(1), PROBE_INTERVAL))
                latencies, failures = probe.get(timeout=args.seconds + 300)
            counts: dict[str, int] = {"200": 0, "429": 0, "other": 0}
            for done in floods:
                for kind, count in done.get(timeout=args.seconds + 300).items():
                    counts[kind] += count
    return Result(name, latencies, failures, counts, *stats.totals())


def report(results: list[Result], args: argparse.Namespace) -> str:
    quiet = sorted(results[0].probe)[int(0.99 * len(results[0].probe))]
    lines = [
        f"p0 floods {args.listers} listing threads (limit=1000 over {args.objects:,} objects) "
        f"and {args.creators} create threads; p1 asks GET /v1/limits every "
        f"{1000 * PROBE_INTERVAL:.0f} ms for {args.seconds:g} s. One uvicorn worker, moto in "
        f"its own process. Python {platform.python_version()}, {os.cpu_count()} CPUs"
        + (f"; the service alone on CPU {args.service_cpu}, the rest on the others."
           if args.service_cpu is not None else ", shared by all."),
        "",
        "| scenario | p1 calls | p1 p50 ms | p1 p99 ms | p1 max ms | p99 vs quiet "
        "| p1 failed | flood 200 | flood 429 | flood other | service CPU s "
        "| service waited for a CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p99 = sorted(r.probe)[int(0.99 * len(r.probe))] if r.probe else float("nan")
        lines.append(
            f"| {r.name} | {len(r.probe):,} | {_ms(r.probe, 0.5)} | {_ms(r.probe, 0.99)} "
            f"| {_ms(r.probe, 1.0)} | {p99 / quiet:.1f}x | {r.probe_failures} "
            f"| {r.flood['200']:,} | {r.flood['429']:,} | {r.flood['other']:,} "
            f"| {r.service_cpu:.2f} | {r.service_waited:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2500)
    parser.add_argument("--listers", type=int, default=50)
    parser.add_argument("--creators", type=int, default=90)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="the service's max_in_flight (default: its default)")
    parser.add_argument("--service-cpu", type=int, default=None,
                        help="run the service on this CPU alone, everything else on the "
                        "others (default: all share every CPU)")
    args = parser.parse_args()
    if args.service_cpu is not None:
        others = set(range(os.cpu_count() or 1)) - {args.service_cpu}
        if args.service_cpu not in os.sched_getaffinity(0) or not others:
            parser.error(f"--service-cpu {args.service_cpu}: this machine has CPUs "
                         f"{sorted(os.sched_getaffinity(0))}; name one and leave another")
        os.sched_setaffinity(0, others)  # moto and the clients, started after this
    with moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=BUCKET)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: s3.put_object(Bucket=BUCKET, Key=f"p0/clip-{n:05d}.mp4",
                                                  Body=b""), range(args.objects)))
        results = []
        for name, flood, cap in (("quiet", False, args.max_in_flight),
                                 ("flooded", True, args.max_in_flight),
                                 ("flooded, cap lifted", True, 10_000)):
            results.append(run(endpoint, name, args, flood=flood, max_in_flight=cap))
            for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
            print(f"done: {name}", file=sys.stderr)
    print(report(results, args))


if __name__ == "__main__":
    main()
