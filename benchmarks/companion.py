"""The API service beside Uppy's Companion: the same S3 multipart protocol, the same load.

Runs the real ``@uppy/companion`` (npm, pinned in ``benchmarks/companion/``; its
standalone server, its S3 multipart routes) and ``streamify serve`` (one uvicorn worker)
side by side on loopback, in front of one S3 (``$S3_ENDPOINT_URL`` with the AWS
credentials, such as the radosgw of ``/tmp/rgw.env``; else moto in its own process), one
bucket, and drives both with the same requests from one load generator (``_loadgen``:
keep-alive clients in worker processes, each sending its next request as soon as the last
is answered):

- signing: ``GET /s3/multipart/{id}/{n}`` (one part, what Uppy sends) and
  ``GET /s3/multipart/{id}/batch`` (``--parts`` parts per call), at each of ``--clients``
  concurrent clients, each client on an upload of its own;
- create (``POST /s3/multipart``), list (``GET /s3/multipart/{id}``) and complete
  (``POST /s3/multipart/{id}/complete``), at each of ``--ops-clients``.

For every measurement the server's CPU (user + system of its process and children, from
``/proc``) is read at the instant the clients start and after the last answer, so each
request counted is paid for in the CPU counted: requests (and URLs) per CPU-second, and
p50/p99 latency as the clients saw it. The two servers take turns at each level (the one
that went first goes second at the next). Each server is configured as its documentation
says for production, with the service's rate limits lifted (one principal stands for
every client here) so that its own cost is measured.

    python benchmarks/companion.py [--seconds 5] [--parts 1,10,100] [--clients 1,10,50,200]
                                   [--ops-clients 1,10] [--ops-count 200] [--processes 2]
    python benchmarks/companion.py --report benchmarks/results/companion-runs.jsonl

Writes ``companion-runs.jsonl`` (each measurement as soon as it is made),
``companion.md`` and ``companion.png`` to ``--out`` (``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import urllib3
from _chart import grouped_bars
from _loadgen import ClientPlan, LoadGenerator, Outcome, Request, process_tree_cpu
from _runs import delete_prefix, machine
from _shared import REGION, moto_server

HERE = Path(__file__).resolve().parent
COMPANION_DIR = HERE / "companion"
STARTUP_TIMEOUT = 60.0
PART = 8 * 1024**2
SIGN_UPLOAD_SIZE = 10_000 * PART
"""Declared size of the uploads signed: 10,000 parts of 8 MiB, the most S3 allows."""
CONTENDERS = ("Companion", "Streamify")


@dataclass(frozen=True)
class Server:
    """One contender, running."""

    name: str
    port: int
    pid: int
    cookie: str
    """Sent by every client (Streamify's session cookie, as its upload page holds it)."""
    capture: str
    """A cookie each client picks up from its first answer (Companion's session)."""
    version: str


@dataclass(frozen=True)
class Row:
    """One measurement: one contender at one level."""

    case: str
    operation: str
    parts: int
    clients: int
    contender: str
    requests: int
    seconds: float
    cpu: float
    p50_ms: float
    p99_ms: float
    failures: int
    error: str = ""

    @property
    def per_cpu(self) -> float:
        return self.requests / self.cpu if self.cpu > 0 else float("nan")

    @property
    def urls_per_cpu(self) -> float:
        return self.per_cpu * self.parts

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")


# --------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, child: subprocess.Popen[bytes], what: str) -> None:
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            if http.request("GET", url, timeout=2).status == 200:
                return
        if child.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (exit {child.poll()})")
        time.sleep(0.1)


@contextlib.contextmanager
def _child(argv: list[str], env: dict[str, str], cwd: Path | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    # Both servers log every request (their defaults); the lines go nowhere.
    child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def companion_version() -> str:
    package = COMPANION_DIR / "node_modules" / "@uppy" / "companion" / "package.json"
    if not package.is_file():
        raise SystemExit(f"@uppy/companion is not installed: run `npm ci` in {COMPANION_DIR}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return f"@uppy/companion {json.loads(package.read_text())['version']} on Node.js {node}"


@contextlib.contextmanager
def companion(endpoint: str, bucket: str, access_key: str, secret_key: str
              ) -> Iterator[Server]:
    """Companion's standalone server (``serve.mjs``: the ``companion`` binary bound to
    127.0.0.1), configured by its ``COMPANION_*`` variables for this bucket, in
    production mode."""
    version = companion_version()
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("COMPANION_", "AWS_"))}
        env.update(
            NODE_ENV="production", COMPANION_HOST="127.0.0.1", COMPANION_PORT=str(port),
            COMPANION_DOMAIN=f"127.0.0.1:{port}", COMPANION_PROTOCOL="http",
            COMPANION_DATADIR=data, COMPANION_SECRET=secrets.token_hex(32),
            COMPANION_PREAUTH_SECRET=secrets.token_hex(32),
            COMPANION_CLIENT_ORIGINS=f"http://127.0.0.1:{port}",
            # Where remote files (Dropbox, URLs...) may be sent: not used by S3 multipart.
            COMPANION_UPLOAD_URLS=f"http://127.0.0.1:{port}/",
            COMPANION_AWS_KEY=access_key, COMPANION_AWS_SECRET=secret_key,
            COMPANION_AWS_BUCKET=bucket, COMPANION_AWS_REGION=REGION,
            COMPANION_AWS_ENDPOINT=endpoint, COMPANION_AWS_FORCE_PATH_STYLE="true",
            COMPANION_AWS_PREFIX="companion/", COMPANION_AWS_EXPIRES="900")
        with _child(["node", str(COMPANION_DIR / "serve.mjs")], env, cwd=COMPANION_DIR) as child:
            _wait_for(f"http://127.0.0.1:{port}/", child, "Companion")
            yield Server("Companion", port, child.pid, cookie="", capture="connect.sid",
                         version=version)


@contextlib.contextmanager
def core_snapshot() -> Iterator[tuple[str, str]]:
    """(PYTHONPATH, description) of the core the service runs: ``run.sh``'s copy when it
    runs this (``BENCH_CORE``), else the committed core (``git archive HEAD``), so that
    edits in the work tree during a run do not change what is measured."""
    if os.environ.get("BENCH_CORE"):
        yield os.environ.get("PYTHONPATH", ""), os.environ["BENCH_CORE"]
        return
    root = HERE.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", str(root), "archive", "HEAD", "core/streamify"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield str(Path(folder) / "core"), f"the core committed at {head}"


@contextlib.contextmanager
def streamify(endpoint: str, bucket: str, access_key: str, secret_key: str, core: str,
              core_description: str) -> Iterator[Server]:
    """``streamify serve`` (one uvicorn worker) with one principal, its limits lifted,
    running the core on ``core`` (a PYTHONPATH)."""
    token = secrets.token_urlsafe(32)
    port = _free_port()
    settings = {
        "bucket": bucket, "s3_endpoint_url": endpoint, "region": REGION,
        "cookie_secret": secrets.token_urlsafe(32),
        "principals": [{"name": "bench",
                        "key_sha256": hashlib.sha256(token.encode()).hexdigest(),
                        "prefix": "streamify/"}],
        "rate_limit": 100_000, "rate_burst": 1_000_000, "max_in_flight": 10_000,
        "max_open_uploads": 100_000, "url_expiry": 900,
    }
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "streamify.json"
        config.write_text(json.dumps(settings))
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("STREAMIFY_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
                   PYTHONPATH=core)
        argv = [sys.executable, "-m", "streamify", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--config", str(config)]
        with _child(argv, env) as child:
            url = f"http://127.0.0.1:{port}"
            _wait_for(f"{url}/healthz", child, "streamify serve")
            answer = urllib3.request("POST", f"{url}/v1/session",
                                     headers={"Authorization": f"Bearer {token}"})
            if answer.status != 204:
                raise SystemExit(f"POST /v1/session answered {answer.status}")
            cookie = str(answer.headers["set-cookie"]).split(";", 1)[0]
            yield Server("Streamify", port, child.pid, cookie=cookie, capture="",
                         version=f"streamify serve, {core_description}, 1 uvicorn worker")


# --------------------------------------------------------------------------- set-up calls
class Setup:
    """Unmeasured calls to a server (making uploads, sending a part) and to S3."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._http = urllib3.PoolManager(maxsize=16, retries=False, timeout=60)
        self._cookie = server.cookie
        if not self._cookie:  # pick up Companion's session once, for these calls
            answer = self._http.request("GET", self._url("/"))
            self._cookie = str(answer.headers.get("set-cookie", "")).split(";", 1)[0]

    def _url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{target}"

    def _json(self, method: str, target: str, body: object = None) -> Any:
        headers = {"Cookie": self._cookie}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        answer = self._http.request(method, self._url(target), body=data, headers=headers)
        if answer.status != 200:
            raise RuntimeError(f"{self.server.name} {method} {target[:80]} answered "
                               f"{answer.status}: {answer.data[:300]!r}")
        return answer.json()

    def create(self, filename: str, size: int) -> tuple[str, str]:
        made = self._json("POST", "/s3/multipart", {
            "filename": filename, "type": "application/octet-stream",
            "metadata": {"size": str(size)}})
        return str(made["uploadId"]), str(made["key"])

    def send_first_part(self, upload_id: str, key: str) -> str:
        """Sign part 1 through the server and PUT its one byte to storage: its ETag."""
        signed = self._json("GET", f"/s3/multipart/{upload_id}/1?key={quote(key, safe='')}")
        answer = self._http.request("PUT", signed["url"], body=b"x",
                                    headers={"Content-Length": "1"})
        if answer.status != 200:
            raise RuntimeError(f"{self.server.name}: PUT of a part answered {answer.status}: "
                               f"{answer.data[:300]!r}")
        return str(answer.headers["ETag"])


def _list_request(upload_id: str, key: str) -> Request:
    return Request("GET", f"/s3/multipart/{upload_id}?key={quote(key, safe='')}")


# --------------------------------------------------------------------------- measuring
def _measure(load: LoadGenerator, server: Server, plans: Sequence[ClientPlan],
             seconds: float, warm: tuple[str, str]) -> tuple[Outcome, float]:
    """Run ``plans`` against ``server``: what the clients saw and the server's CPU."""
    started: list[float] = []
    outcome = load.run(host="127.0.0.1", port=server.port, plans=plans, seconds=seconds,
                       warm_up=[_list_request(*warm)], cookie=server.cookie,
                       capture=server.capture,
                       on_start=lambda: started.append(process_tree_cpu(server.pid)))
    cpu = process_tree_cpu(server.pid) - started[0] if started else 0.0
    return outcome, cpu


def _row(case: str, operation: str, parts: int, clients: int, server: Server,
         outcome: Outcome, cpu: float) -> Row:
    error = "; ".join(outcome.failure_samples)
    return Row(case=case, operation=operation, parts=parts, clients=clients,
               contender=server.name, requests=outcome.requests,
               seconds=round(outcome.wall, 3), cpu=round(cpu, 3),
               p50_ms=round(outcome.percentile_ms(0.5), 3),
               p99_ms=round(outcome.percentile_ms(0.99), 3), failures=outcome.failures,
               error=error)


def _turns(servers: Sequence[Server], level: int) -> list[Server]:
    """The servers in the order they take their turn at the ``level``-th level."""
    shift = level % len(servers)
    return list(servers[shift:]) + list(servers[:shift])


def warm_up(load: LoadGenerator, server: Server, setup: Setup, warm: tuple[str, str],
            seconds: float) -> None:
    """Unrecorded load on every route first: Node.js compiles Companion's hot paths only
    after some thousands of calls (its first calls are several times slower), and Python
    fills its caches; the measurements are of servers in their steady state."""
    uploads = [setup.create(f"warm-sign-{n}.bin", SIGN_UPLOAD_SIZE) for n in range(10)]
    for parts in (1, 100):
        plans = [ClientPlan("sign", {"client": n, "upload_id": u, "key": k, "parts": parts})
                 for n, (u, k) in enumerate(uploads)]
        _check_warm(server, load.run(host="127.0.0.1", port=server.port, plans=plans,
                                     seconds=seconds, cookie=server.cookie,
                                     capture=server.capture))
    plans = [ClientPlan("list", {"client": n, "uploads": [warm]}) for n in range(10)]
    _check_warm(server, load.run(host="127.0.0.1", port=server.port, plans=plans,
                                 seconds=seconds, cookie=server.cookie, capture=server.capture))
    plans = [ClientPlan("create", {"client": n, "count": 10, "tag": "warm", "size": 1})
             for n in range(4)]
    made = load.run(host="127.0.0.1", port=server.port, plans=plans, seconds=3600,
                    cookie=server.cookie, capture=server.capture)
    _check_warm(server, made)
    created = [(str(a["uploadId"]), str(a["key"])) for a in made.kept]
    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(lambda u: setup.send_first_part(*u), created))
    done = [(u, k, e) for (u, k), e in zip(created, etags, strict=True)]
    plans = [ClientPlan("complete", {"client": n, "uploads": done[n::4]}) for n in range(4)]
    _check_warm(server, load.run(host="127.0.0.1", port=server.port, plans=plans,
                                 seconds=3600, cookie=server.cookie, capture=server.capture))


def _check_warm(server: Server, outcome: Outcome) -> None:
    if outcome.failures:
        raise SystemExit(f"{server.name} failed while warming up: "
                         f"{'; '.join(outcome.failure_samples)}")


def measure_signing(load: LoadGenerator, servers: Sequence[Server], setups: dict[str, Setup],
                    warm: dict[str, tuple[str, str]], args: argparse.Namespace,
                    record: Callable[[Row], None]) -> None:
    most = max(args.clients)
    uploads = {}
    for server in servers:
        with ThreadPoolExecutor(8) as pool:
            uploads[server.name] = list(pool.map(
                lambda n, s=server: setups[s.name].create(f"sign-{n}.bin", SIGN_UPLOAD_SIZE),
                range(most)))
    level = 0
    for parts in args.parts:
        for clients in args.clients:
            for server in _turns(servers, level):
                plans = [ClientPlan("sign", {"client": n, "upload_id": uploads[server.name][n][0],
                                             "key": uploads[server.name][n][1], "parts": parts})
                         for n in range(clients)]
                outcome, cpu = _measure(load, server, plans, args.seconds, warm[server.name])
                record(_row(f"sign {parts}", "sign", parts, clients, server, outcome, cpu))
            level += 1


def measure_operations(load: LoadGenerator, servers: Sequence[Server],
                       setups: dict[str, Setup], warm: dict[str, tuple[str, str]],
                       args: argparse.Namespace, record: Callable[[Row], None]) -> None:
    """Create ``--ops-count`` uploads, send one part to each (not measured), list them
    for ``--seconds``, complete each."""
    for level, clients in enumerate(args.ops_clients):
        for server in _turns(servers, level):
            tag = uuid.uuid4().hex[:8]
            count = max(1, args.ops_count // clients)
            plans = [ClientPlan("create", {"client": n, "count": count, "tag": tag, "size": 1})
                     for n in range(clients)]
            outcome, cpu = _measure(load, server, plans, 3600, warm[server.name])
            record(_row("create", "create", 1, clients, server, outcome, cpu))
            made = [(str(a["uploadId"]), str(a["key"])) for a in outcome.kept]
            if not made:
                continue
            with ThreadPoolExecutor(8) as pool:
                etags = list(pool.map(lambda u, s=server: setups[s.name].send_first_part(*u),
                                      made))
            shares = [made[n::clients] for n in range(clients)]
            plans = [ClientPlan("list", {"client": n, "uploads": share})
                     for n, share in enumerate(shares) if share]
            outcome, cpu = _measure(load, server, plans, args.seconds, warm[server.name])
            record(_row("list", "list", 1, clients, server, outcome, cpu))
            done = [(u, k, e) for (u, k), e in zip(made, etags, strict=True)]
            plans = [ClientPlan("complete", {"client": n, "uploads": done[n::clients]})
                     for n in range(clients) if done[n::clients]]
            outcome, cpu = _measure(load, server, plans, 3600, warm[server.name])
            record(_row("complete", "complete", 1, clients, server, outcome, cpu))


# --------------------------------------------------------------------------- report
def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and a == a and b == b else "-"


def report(rows: Sequence[Row], header: dict[str, str]) -> str:
    lines = ["# Streamify's API service beside Uppy's Companion", "",
             *(f"- {name}: {value}" for name, value in header.items()), ""]
    by_key = {(r.case, r.clients, r.contender): r for r in rows}
    levels = list(dict.fromkeys((r.case, r.clients) for r in rows))
    lines += [
        "| operation | clients | Companion req/CPU-s | Streamify req/CPU-s | ratio "
        "| Companion URLs/CPU-s | Streamify URLs/CPU-s | Companion req/s | Streamify req/s "
        "| Companion p50 ms | Streamify p50 ms | Companion p99 ms | Streamify p99 ms "
        "| 3x and lower p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case, clients in levels:
        c, s = by_key.get((case, clients, "Companion")), by_key.get((case, clients, "Streamify"))
        if c is None or s is None:
            continue
        signing = case.startswith("sign")
        met = (s.per_cpu >= 3 * c.per_cpu and s.p99_ms < c.p99_ms)
        failed = [f"{r.contender}: {r.failures} failed" for r in (c, s) if r.failures]
        lines.append(
            f"| {case}{' part' + ('s' if s.parts > 1 else '') if signing else ''} | {clients} "
            f"| {c.per_cpu:,.0f} | {s.per_cpu:,.0f} | {_ratio(s.per_cpu, c.per_cpu)} "
            f"| {c.urls_per_cpu:,.0f} | {s.urls_per_cpu:,.0f} "
            f"| {c.per_second:,.0f} | {s.per_second:,.0f} "
            f"| {c.p50_ms:.1f} | {s.p50_ms:.1f} | {c.p99_ms:.1f} | {s.p99_ms:.1f} "
            f"| {('yes' if met else 'no') if signing else ''}"
            f"{' (' + ', '.join(failed) + ')' if failed else ''} |")
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "Failures (first of each measurement):", ""]
        lines += [f"- {r.contender} {r.case} x{r.clients}: {r.error[:300]}" for r in errors]
    lines += ["", "req/CPU-s: requests answered per CPU-second of the server (user + system, "
              "its process and children); URLs/CPU-s: presigned URLs per CPU-second; "
              "req/s: per wall-second; p50/p99: latency of one call as its client saw it. "
              "Ratio: Streamify's req/CPU-s over Companion's."]
    return "\n".join(lines) + "\n"


def chart(rows: Sequence[Row], path: Path) -> None:
    levels = list(dict.fromkeys((r.case, r.clients) for r in rows))
    names = {level: (f"{level[0].removeprefix('sign ')} p.\nx{level[1]}"
                     if level[0].startswith("sign") else f"{level[0]}\nx{level[1]}")
             for level in levels}
    per_cpu = {(names[r.case, r.clients], r.contender): r.urls_per_cpu for r in rows
               if not r.failures}
    p99 = {(names[r.case, r.clients], r.contender): r.p99_ms for r in rows if not r.failures}
    throughput, latency = "URLs (sign) or requests\nper server CPU-second", "p99 latency, ms"
    grouped_bars(path, "Companion S3 routes: Streamify's service beside @uppy/companion "
                       "(sign: parts per call, x clients)",
                 [names[level] for level in levels], CONTENDERS,
                 [(throughput, per_cpu), (latency, p99)], log_scale={throughput, latency})


def write_outputs(rows: Sequence[Row], header: dict[str, str], out: Path) -> None:
    (out / "companion.md").write_text(report(rows, header))
    try:
        chart(rows, out / "companion.png")
    except ImportError:
        print("no chart: matplotlib is not installed (benchmarks/requirements.txt)",
              file=sys.stderr)


def load_rows(path: Path) -> tuple[list[Row], dict[str, str]]:
    rows, header = [], {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        if "header" in data:
            header = data["header"]
        else:
            rows.append(Row(**data))
    return rows, header


# --------------------------------------------------------------------------- main
def _credentials(endpoint: str | None) -> tuple[str, str]:
    if not endpoint:
        return "bench", "bench-secret"
    frozen = boto3.Session().get_credentials()
    if frozen is None:
        raise SystemExit("no AWS credentials: source /tmp/rgw.env or set AWS_ACCESS_KEY_ID")
    creds = frozen.get_frozen_credentials()
    return str(creds.access_key), str(creds.secret_key)


@contextlib.contextmanager
def _storage(endpoint: str | None) -> Iterator[tuple[str, str]]:
    """(endpoint, description): the given S3, or moto in its own process."""
    if endpoint:
        yield endpoint, f"S3 at {endpoint}"
        return
    with moto_server() as local:
        yield local, "moto (its own process)"


@contextlib.contextmanager
def _bucket(endpoint: str, access_key: str, secret_key: str) -> Iterator[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    bucket = f"companion-bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        for uploads in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in uploads.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
        delete_prefix(s3, bucket, "")
        s3.delete_bucket(Bucket=bucket)


def _numbers(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="seconds of load per signing and list measurement (default 5)")
    parser.add_argument("--parts", type=_numbers, default=[1, 10, 100],
                        help="parts per sign call (default 1,10,100)")
    parser.add_argument("--clients", type=_numbers, default=[1, 10, 50, 200],
                        help="concurrent clients while signing (default 1,10,50,200)")
    parser.add_argument("--ops-clients", type=_numbers, default=[1, 10],
                        help="concurrent clients for create, list, complete (default 1,10)")
    parser.add_argument("--ops-count", type=int, default=200,
                        help="uploads created (then completed) per level (default 200)")
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="seconds of unrecorded load on each sign and list route of "
                             "each server first (default 5)")
    parser.add_argument("--only", choices=CONTENDERS, default=None,
                        help="run one server only (to profile it)")
    parser.add_argument("--processes", type=int, default=2,
                        help="load generator processes (default 2)")
    parser.add_argument("--s3-endpoint", default=os.environ.get("S3_ENDPOINT_URL"),
                        help="S3 to use (default $S3_ENDPOINT_URL, else moto)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--report", type=Path, default=None,
                        help="rebuild companion.md and companion.png from a runs file")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        write_outputs(*load_rows(args.report), args.out)
        return
    if max(args.parts) > 100:
        parser.error("--parts: at most 100 per call (the service's max_sign_batch)")
    runs = args.out / "companion-runs.jsonl"
    access_key, secret_key = _credentials(args.s3_endpoint)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        endpoint, storage = stack.enter_context(_storage(args.s3_endpoint))
        bucket = stack.enter_context(_bucket(endpoint, access_key, secret_key))
        core, core_description = stack.enter_context(core_snapshot())
        servers = [stack.enter_context(companion(endpoint, bucket, access_key, secret_key)),
                   stack.enter_context(streamify(endpoint, bucket, access_key, secret_key,
                                                 core, core_description))]
        servers = [s for s in servers if args.only in (None, s.name)]
        print(", ".join(f"{s.name} pid {s.pid} port {s.port}" for s in servers), flush=True)
        load = stack.enter_context(LoadGenerator(args.processes))
        setups = {server.name: Setup(server) for server in servers}
        warm = {}
        for server in servers:
            made = setups[server.name].create("warm.bin", 1)
            setups[server.name].send_first_part(*made)
            warm[server.name] = made
        if args.warm_up > 0:
            for server in servers:
                warm_up(load, server, setups[server.name], warm[server.name], args.warm_up)
        header = {
            "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "storage": storage, **{s.name: s.version for s in servers},
            "load": f"{args.processes} client processes (asyncio, keep-alive), "
                    f"{args.seconds:g} s per signing and list measurement, "
                    f"{args.ops_count} uploads created and completed per level, after "
                    f"{args.warm_up:g} s of warm-up load on each route",
            "command": "python benchmarks/companion.py " + " ".join(sys.argv[1:]),
        }
        runs.write_text(json.dumps({"header": header}) + "\n")

        def record(row: Row) -> None:
            rows.append(row)
            with runs.open("a") as fh:
                fh.write(json.dumps(asdict(row)) + "\n")
            print(f"{row.contender:<10} {row.case:<9} x{row.clients:<4} {row.requests:>6} req "
                  f"{row.per_cpu:>9,.0f}/CPU-s {row.per_second:>8,.0f}/s "
                  f"p50 {row.p50_ms:8.1f} p99 {row.p99_ms:8.1f} ms", flush=True)
            if row.failures:
                print(f"  FAILED {row.failures}: {row.error[:300]}", flush=True)

        measure_operations(load, servers, setups, warm, args, record)
        measure_signing(load, servers, setups, warm, args, record)
        header["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        with runs.open("a") as fh:
            fh.write(json.dumps({"header": header}) + "\n")
    write_outputs(rows, header, args.out)
    print(f"wrote {args.out / 'companion.md'}")


if __name__ == "__main__":
    main()
