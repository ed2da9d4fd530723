"""How fast the API service hands out presigned part URLs: one per call, or many per call.

Runs the API service under a real uvicorn in a child process (so that the clients measured
here do not share an interpreter lock with it), on loopback: by default
``streamify serve --local``, whose S3 is moto; with ``--s3-endpoint URL``,
``streamify serve`` in front of a fresh bucket on that real S3
server, made and removed by this script. Then, side by side in one run:

- the baseline: boto3's ``generate_presigned_url`` in this process (no HTTP at all);
- for scale: ``GET /healthz`` (HTTP and the framework, no S3 call) and boto3's
  ``list_multipart_uploads`` on the key (the ownership check the service makes before it
  signs anything);
- single-part signing over HTTP: the Companion route ``GET /s3/multipart/{id}/{n}`` and
  the native ``POST /v1/uploads/{id}/sign`` with one part;
- batch signing over HTTP: Companion ``GET /s3/multipart/{id}/batch`` and native
  ``POST /v1/uploads/{id}/sign`` with ``--batch`` parts per call;
- the native sign route (one part, and a batch) under 1, 8 and 32 concurrent clients:
  throughput and p50/p99 latency.

Every loop is bounded by a request count and by time; the script stops by itself.

    python benchmarks/sign_throughput.py [--seconds 3] [--batch 100] [--clients 1,8,32]
                                         [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import boto3
import urllib3
from streamify._s3control import s3_client
from streamify.server import hash_api_key

MAX_REQUESTS = 200_000
"""Upper bound on the calls of one measurement, whatever ``--seconds`` says."""
STARTUP_TIMEOUT = 60.0
# What `streamify serve --local` configures its emulator with (moto takes any key).
LOCAL_KEY = "streamify-local"


@dataclass(frozen=True)
class Stack:
    """A running API service and the S3 behind it."""

    api_url: str
    s3_endpoint: str
    bucket: str
    token: str
    s3: Any
    """A boto3 S3 client on ``s3_endpoint`` with the service's credentials."""
    description: str


@dataclass(frozen=True)
class Measurement:
    calls: int
    seconds: float
    urls_per_call: int
    latencies: list[float]

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def urls_per_second(self) -> float:
        return self.calls_per_second * self.urls_per_call

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def child_process(command: list[str], env: dict[str, str] | None = None
                  ) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=env)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def serve_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "streamify", "serve", "--host", "127.0.0.1", *extra]


@contextlib.contextmanager
def local_stack() -> Iterator[Stack]:
    """``streamify serve --local --port 0``: the service and moto, in a child process."""
    with child_process(serve_command("--port", "0", "--local")) as child:
        assert child.stdout is not None
        stdout = child.stdout
        lines: queue.Queue[str] = queue.Queue()
        def read_lines() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=read_lines, daemon=True).start()
        found: dict[str, str] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while len(found) < 4:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("`streamify serve --local` did not start in "
                                   f"{STARTUP_TIMEOUT:.0f} s") from None
            name, _, value = line.partition(":")
            found[name.strip()] = value.strip()
        wait_until_ready(found["Streamify API"], deadline)
        s3 = s3_client(endpoint_url=found["S3 endpoint"], region="us-east-1",
                       session=boto3.Session(aws_access_key_id=LOCAL_KEY,
                                             aws_secret_access_key=LOCAL_KEY))
        yield Stack(api_url=found["Streamify API"], s3_endpoint=found["S3 endpoint"],
                    bucket=found["Bucket"], token=found["Token"], s3=s3,
                    description="`streamify serve --local` (moto as S3)")


@contextlib.contextmanager
def real_s3_stack(endpoint: str) -> Iterator[Stack]:
    """``streamify serve`` in front of a fresh bucket on a real S3 server.

    The credentials are the standard AWS chain's (``AWS_ACCESS_KEY_ID``...), for both this
    script and the service.
    """
    s3 = s3_client(endpoint_url=endpoint, region=os.environ.get("AWS_DEFAULT_REGION",
                                                                "us-east-1"))
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    token = secrets.token_urlsafe(32)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, STREAMIFY_BUCKET=bucket, STREAMIFY_S3_ENDPOINT_URL=endpoint,
               STREAMIFY_COOKIE_SECRET=secrets.token_urlsafe(32),
               STREAMIFY_PRINCIPALS=json.dumps([{
                   "name": "bench", "prefix": "",
                   "key_sha256": hash_api_key(token)}]))
    try:
        with child_process(serve_command("--port", str(port)), env=env):
            api_url = f"http://127.0.0.1:{port}"
            wait_until_ready(api_url, time.monotonic() + STARTUP_TIMEOUT)
            yield Stack(api_url=api_url, s3_endpoint=endpoint, bucket=bucket, token=token,
                        s3=s3, description=f"`streamify serve` (real S3 at {endpoint})")
    finally:
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=bucket)


def wait_until_ready(api_url: str, deadline: float) -> None:
    http = urllib3.PoolManager(retries=False)
    while True:
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            if http.request("GET", f"{api_url}/healthz", timeout=2).status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API service at {api_url} never answered /healthz")
        time.sleep(0.05)


class Client:
    """One keep-alive connection to the service, as a browser tab or a worker holds it."""

    def __init__(self, stack: Stack, session_cookie: str) -> None:
        self._http = urllib3.connection_from_url(stack.api_url, maxsize=1, retries=False,
                                                 timeout=30)
        self._bearer = {"Authorization": f"Bearer {stack.token}",
                        "Content-Type": "application/json"}
        self._cookie = {"Cookie": session_cookie}

    def native(self, path: str, body: object) -> object:
        """A native route, with the API key (as a program calls it)."""
        answer = self._http.request("POST", path, body=json.dumps(body).encode(),
                                    headers=self._bearer)
        return self._checked(answer, path)

    def companion(self, path: str) -> object:
        """A Companion route, with the session cookie (as Uppy calls it)."""
        return self._checked(self._http.request("GET", path, headers=self._cookie), path)

    @staticmethod
    def _checked(answer: urllib3.BaseHTTPResponse, path: str) -> object:
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {answer.data[:300]!r}")
        return answer.json()


def open_session(stack: Stack) -> str:
    """Exchange the API key for the browser session cookie (``name=value``)."""
    answer = urllib3.request("POST", f"{stack.api_url}/v1/session",
                             headers={"Authorization": f"Bearer {stack.token}"})
    if answer.status != 204:
        raise RuntimeError(f"POST /v1/session answered {answer.status}")
    return str(answer.headers["set-cookie"]).split(";", 1)[0]


def create_upload(stack: Stack) -> tuple[str, str]:
    answer = urllib3.request(
        "POST", f"{stack.api_url}/v1/uploads",
        body=json.dumps({"filename": "benchmark.bin", "size": 100 * 1024**3}).encode(),
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"})
    if answer.status != 200:
        raise RuntimeError(f"POST /v1/uploads answered {answer.status}: {answer.data!r}")
    created = answer.json()
    return str(created["upload_id"]), str(created["key"])


def measure(call: Callable[[int], object], *, seconds: float, urls_per_call: int = 1,
            clients: int = 1) -> Measurement:
    """Run ``call(i)`` from ``clients`` threads until ``seconds`` pass or ``MAX_REQUESTS``."""
    call(0)  # warm up: connection, first-call caches
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start = time.perf_counter()
    stop_at = start + seconds
    per_client = MAX_REQUESTS // clients

    def work(index: int) -> None:
        mine = latencies[index]
        try:
            for i in range(per_client):
                began = time.perf_counter()
                if began >= stop_at:
                    return
                call(index * per_client + i)
                mine.append(time.perf_counter() - began)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [value for values in latencies for value in values]
    return Measurement(calls=len(flat), seconds=elapsed, urls_per_call=urls_per_call,
                       latencies=flat)


HEADER = (f"{'calls':>7} {'calls/s':>9} {'URLs/s':>9} {'p50 ms':>7} {'p99 ms':>7}")


def row(name: str, result: Measurement, note: str = "") -> str:
    urls = f"{result.urls_per_second:>9.0f}" if result.urls_per_call else f"{'-':>9}"
    return (f"{name:<46} {result.calls:>7} {result.calls_per_second:>9.0f} {urls} "
            f"{result.percentile_ms(0.5):>7.2f} {result.percentile_ms(0.99):>7.2f}  {note}")


def run(stack: Stack, *, seconds: float, batch: int, levels: list[int]) -> None:
    upload_id, key = create_upload(stack)
    cookie = open_session(stack)
    quoted_key = urlencode({"key": key})
    local = threading.local()

    def client() -> Client:
        if not hasattr(local, "client"):
            local.client = Client(stack, cookie)
        return local.client  # type: ignore[no-any-return]

    def part(i: int) -> int:
        return 1 + i % 10_000

    def batch_numbers(i: int) -> list[int]:
        first = (i * batch) % (10_000 - batch)
        return list(range(first + 1, first + batch + 1))

    def boto3_sign(i: int) -> object:
        return stack.s3.generate_presigned_url("upload_part", ExpiresIn=900, Params={
            "Bucket": stack.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part(i)})

    def boto3_list_uploads(_: int) -> object:
        return stack.s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=key)

    def healthz(_: int) -> object:
        return client().companion("/healthz")

    def companion_single(i: int) -> object:
        return client().companion(f"/s3/multipart/{upload_id}/{part(i)}?{quoted_key}")

    def companion_batch(i: int) -> object:
        numbers = ",".join(str(n) for n in batch_numbers(i))
        return client().companion(
            f"/s3/multipart/{upload_id}/batch?{quoted_key}&partNumbers={numbers}")

    def native_sign(numbers: list[int]) -> object:
        return client().native(f"/v1/uploads/{upload_id}/sign", {
            "key": key, "parts": [{"number": n} for n in numbers]})

    def native_single(i: int) -> object:
        return native_sign([part(i)])

    def native_batch(i: int) -> object:
        return native_sign(batch_numbers(i))

    print(f"sign throughput: {stack.description}, 1 uvicorn worker, on loopback; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {seconds:g} s per row")
    print()
    print(f"{'for scale (1 client)':<46} {HEADER}")
    print(row("GET /healthz (no S3 call)", measure(healthz, seconds=seconds,
                                                   urls_per_call=0)), flush=True)
    print(row("boto3 list_multipart_uploads (ownership check)",
              measure(boto3_list_uploads, seconds=seconds, urls_per_call=0)), flush=True)

    # name, call, URLs per call, and the earlier rows (with labels) to compare URLs/s with
    rows: list[tuple[str, Callable[[int], object], int, list[tuple[int, str]]]] = [
        ("boto3 generate_presigned_url, in-process", boto3_sign, 1, []),
        ("Companion GET /s3/multipart/{id}/{n}", companion_single, 1, [(0, "boto3")]),
        ("native POST /v1/uploads/{id}/sign, 1 part", native_single, 1, [(0, "boto3")]),
        (f"Companion GET .../batch, {batch} parts", companion_batch, batch,
         [(1, "Companion single"), (0, "boto3")]),
        (f"native POST .../sign, {batch} parts", native_batch, batch,
         [(2, "native single"), (0, "boto3")]),
    ]
    results: list[Measurement] = []
    print()
    print(f"{'signing (1 client)':<46} {HEADER}  URLs/s ratio")
    for name, call, urls, compare in rows:
        result = measure(call, seconds=seconds, urls_per_call=urls)
        results.append(result)
        note = ", ".join(f"{result.urls_per_second / results[i].urls_per_second:.3g}x {label}"
                         for i, label in compare)
        print(row(name, result, note), flush=True)

    for name, call, urls in [("native sign, 1 part", native_single, 1),
                             (f"native sign, {batch} parts", native_batch, batch)]:
        print()
        print(f"{'concurrent clients: ' + name:<46} {HEADER}")
        for clients in levels:
            result = measure(call, seconds=seconds, urls_per_call=urls, clients=clients)
            print(row(f"{clients:>3} client{'s' if clients > 1 else ''}", result), flush=True)
    print()
    print(f"p50/p99: latency of one call as its client saw it; a batch call signs {batch} URLs.")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="time spent on each measurement (default 3)")
    parser.add_argument("--batch", type=int, default=100,
                        help="parts signed per batch call (default 100)")
    parser.add_argument("--clients", default="1,8,32",
                        help="concurrent clients to try, comma-separated (default 1,8,32)")
    parser.add_argument("--s3-endpoint", default=None,
                        help="a real S3 server (default: moto, through serve --local)")
    args = parser.parse_args()
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be within 1..1000 (the service's default limit)")
    levels = [int(n) for n in args.clients.split(",")]
    stack = real_s3_stack(args.s3_endpoint) if args.s3_endpoint else local_stack()
    with stack as running:
        run(running, seconds=args.seconds, batch=args.batch, levels=levels)


if __name__ == "__main__":
    main()
