"""A closed-loop HTTP load generator: many keep-alive clients in a few processes.

Each client is one HTTP/1.1 keep-alive connection (as a browser tab or an Uppy instance
holds one) that sends its next request as soon as the answer to the last one arrives. The
clients run as coroutines on plain asyncio streams (no HTTP library: a request costs the
client some 50 microseconds), spread over ``processes`` worker processes, so that the
client is not what limits a server on a machine of few cores.

A measurement runs in two steps. ``LoadGenerator.run`` sends every worker its clients;
each connects and makes its warm-up requests (which open the connection, pick up a
cookie, fill the server's first-call caches) and says it is ready; then all of them start
at one instant, stop starting requests after ``seconds``, and finish the requests they
have in flight. What comes back: every request's latency, the instant the first started
and the last finished, and the first few failures. The caller measures the server's CPU
over exactly that span (``process_tree_cpu``), so every request counted is paid for in
the CPU counted.

The requests are plain data (``Request``), made by a named recipe (``RECIPES``) from each
client's parameters, so that one recipe drives any server with the same sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote

from _procstat import processes

__all__ = ["RECIPES", "ClientPlan", "LoadGenerator", "Outcome", "Request", "process_tree_cpu"]

_MAX_FAILURES_KEPT = 5


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    body: bytes = b""
    check: Callable[[Any], str | None] | None = None
    """Given the decoded JSON answer, what is wrong with it (``None``: nothing)."""
    keep: bool = False
    """Return the decoded answer to the caller (what a create made, say)."""


@dataclass(frozen=True)
class ClientPlan:
    """One client: which recipe it follows and with what."""

    recipe: str
    params: dict[str, Any]


@dataclass
class Outcome:
    """What one measurement saw, all clients together."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    first_start: float = float("inf")
    last_end: float = 0.0
    kept: list[Any] = field(default_factory=list)
    reconnects: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def wall(self) -> float:
        return max(1e-9, self.last_end - self.first_start)

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def merge(self, other: Outcome) -> None:
        self.latencies.extend(other.latencies)
        self.failures += other.failures
        room = _MAX_FAILURES_KEPT - len(self.failure_samples)
        self.failure_samples.extend(other.failure_samples[:max(0, room)])
        self.first_start = min(self.first_start, other.first_start)
        self.last_end = max(self.last_end, other.last_end)
        self.kept.extend(other.kept)
        self.reconnects += other.reconnects


# --------------------------------------------------------------------------- recipes
# Uppy's Companion S3 protocol, as @uppy/aws-s3 speaks it. Every recipe yields requests
# forever (or until its work is done); ``params`` always holds ``client`` (its index).

def _key_query(key: str) -> str:
    return "key=" + quote(key, safe="")


def _check_signed(parts: int) -> Callable[[Any], str | None]:
    def check(answer: Any) -> str | None:
        if parts == 1:
            ok = isinstance(answer, dict) and str(answer.get("url", "")).startswith("http")
            return None if ok else f"no URL in {str(answer)[:200]}"
        urls = answer.get("presignedUrls") if isinstance(answer, dict) else None
        if not isinstance(urls, dict) or len(urls) != parts:
            return f"expected {parts} URLs, got {str(answer)[:200]}"
        return None
    return check


def sign_recipe(params: dict[str, Any]) -> Iterator[Request]:
    """Sign ``parts`` parts per call of the client's own upload, walking its part numbers:
    one part on ``GET /s3/multipart/{id}/{n}`` (what Uppy sends), more on ``.../batch``."""
    upload_id, key, parts = params["upload_id"], params["key"], int(params["parts"])
    query = _key_query(key)
    check = _check_signed(parts)
    first = 0
    while True:
        numbers = range(first + 1, first + parts + 1)
        first = (first + parts) % (10_000 - parts)
        if parts == 1:
            yield Request("GET", f"/s3/multipart/{upload_id}/{numbers[0]}?{query}",
                          check=check)
        else:
            listed = ",".join(str(n) for n in numbers)
            yield Request("GET", f"/s3/multipart/{upload_id}/batch?{query}"
                                 f"&partNumbers={listed}", check=check)


def create_recipe(params: dict[str, Any]) -> Iterator[Request]:
    """``POST /s3/multipart``, ``count`` times, a new file name each time."""
    def check(answer: Any) -> str | None:
        ok = isinstance(answer, dict) and answer.get("uploadId") and answer.get("key")
        return None if ok else f"no upload in {str(answer)[:200]}"

    for index in range(int(params["count"])):
        body = json.dumps({"filename": f"{params['tag']}-{params['client']}-{index}.bin",
                           "type": "application/octet-stream",
                           "metadata": {"size": str(params["size"])}}).encode()
        yield Request("POST", "/s3/multipart", body, check=check, keep=True)


def list_recipe(params: dict[str, Any]) -> Iterator[Request]:
    """``GET /s3/multipart/{id}?key=`` over the client's uploads, round and round."""
    def check(answer: Any) -> str | None:
        return None if isinstance(answer, list) and answer else f"no parts in {answer!r:.200}"

    uploads: list[tuple[str, str]] = params["uploads"]
    while True:
        for upload_id, key in uploads:
            yield Request("GET", f"/s3/multipart/{upload_id}?{_key_query(key)}", check=check)


def complete_recipe(params: dict[str, Any]) -> Iterator[Request]:
    """``POST /s3/multipart/{id}/complete?key=`` once for each of the client's uploads."""
    def check(answer: Any) -> str | None:
        return None if isinstance(answer, dict) and "location" in answer else (
            f"not completed: {answer!r:.200}")

    for upload_id, key, etag in params["uploads"]:
        body = json.dumps({"parts": [{"PartNumber": 1, "ETag": etag}]}).encode()
        yield Request("POST", f"/s3/multipart/{upload_id}/complete?{_key_query(key)}", body,
                      check=check)


RECIPES: dict[str, Callable[[dict[str, Any]], Iterator[Request]]] = {
    "sign": sign_recipe, "create": create_recipe, "list": list_recipe,
    "complete": complete_recipe,
}


# --------------------------------------------------------------------------- the client
class _Closed(Exception):
    """The server closed a kept-alive connection before answering."""


class _Client:
    """One keep-alive connection; remembers the cookie the server sets, as a browser does."""

    def __init__(self, host: str, port: int, cookie: str, capture: str) -> None:
        self.host, self.port = host, port
        self.cookie = cookie
        self.capture = capture
        self.reconnects = 0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def call(self, request: Request) -> tuple[int, bytes]:
        """Send ``request``; on a kept-alive connection the server closed meanwhile,
        connect again and send it once more (nothing of it was answered)."""
        for attempt in range(2):
            if self._streams is None:
                self._streams = await asyncio.open_connection(self.host, self.port)
                if attempt:
                    self.reconnects += 1
            try:
                return await self._exchange(request)
            except (_Closed, ConnectionResetError, BrokenPipeError):
                await self.close()
        raise _Closed("the server closed the connection twice")

    async def _exchange(self, request: Request) -> tuple[int, bytes]:
        assert self._streams is not None
        reader, writer = self._streams
        head = [f"{request.method} {request.target} HTTP/1.1", f"Host: {self.host}:{self.port}",
                "Accept: application/json"]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        if request.body or request.method == "POST":
            head += ["Content-Type: application/json", f"Content-Length: {len(request.body)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + request.body)
        await writer.drain()
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _Closed from exc
            raise
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "set-cookie" and self.capture and not self.cookie \
                    and value.startswith(self.capture + "="):
                self.cookie = value.split(";", 1)[0]
        body = await (self._chunks(reader) if chunked else reader.readexactly(length))
        if close:
            await self.close()
        return status, body

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)


async def _one(client: _Client, request: Request, outcome: Outcome) -> float:
    """Make ``request``; record its latency (and a failure); return when it ended."""
    started = time.perf_counter()
    problem: str | None = None
    answer: Any = None
    try:
        status, body = await client.call(request)
    except (OSError, asyncio.IncompleteReadError, _Closed, ValueError) as exc:
        problem = f"{request.method} {request.target[:80]}: {type(exc).__name__}: {exc}"
    else:
        ended = time.perf_counter()
        if status != 200:
            problem = f"{request.method} {request.target[:80]}: {status} {body[:200]!r}"
        else:
            try:
                answer = json.loads(body)
            except ValueError:
                problem = f"{request.method} {request.target[:80]}: not JSON {body[:200]!r}"
            else:
                if request.check is not None:
                    problem = request.check(answer)
        outcome.latencies.append(ended - started)
        outcome.first_start = min(outcome.first_start, started)
        outcome.last_end = max(outcome.last_end, ended)
    if problem is not None:
        outcome.failures += 1
        if len(outcome.failure_samples) < _MAX_FAILURES_KEPT:
            outcome.failure_samples.append(problem)
    elif request.keep:
        outcome.kept.append(answer)
    return time.perf_counter()


@dataclass(frozen=True)
class _Job:
    host: str
    port: int
    cookie: str
    capture: str
    warm_up: list[Request]
    plans: list[ClientPlan]
    seconds: float


async def _run_job(job: _Job, channel: Connection) -> Outcome:
    clients = [_Client(job.host, job.port, job.cookie, job.capture) for _ in job.plans]
    recipes = [RECIPES[plan.recipe](dict(plan.params)) for plan in job.plans]
    warm = Outcome()
    # Warm up a few clients at a time: 200 connections at once would overflow the
    # server's listen backlog.
    gate = asyncio.Semaphore(16)

    async def warm_up(client: _Client, plan: ClientPlan) -> None:
        async with gate:
            for request in job.warm_up:
                await _one(client, request, warm)
            if plan.recipe == "sign":
                # The first signature of an upload checks that it is open (one S3 call);
                # the server then remembers it.
                await _one(client, next(RECIPES["sign"](dict(plan.params))), warm)

    await asyncio.gather(*(warm_up(c, p) for c, p in zip(clients, job.plans, strict=True)))
    if warm.failures:
        for client in clients:
            await client.close()
        warm.latencies.clear()
        return warm
    channel.send("ready")
    start_at = channel.recv()  # a perf_counter instant: the same clock in every process
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    stop_at = start_at + job.seconds
    outcome = Outcome()

    async def drive(client: _Client, recipe: Iterator[Request]) -> None:
        for request in recipe:
            if await _one(client, request, outcome) >= stop_at:
                break

    await asyncio.gather(*(drive(c, r) for c, r in zip(clients, recipes, strict=True)))
    for client in clients:
        outcome.reconnects += client.reconnects
        await client.close()
    return outcome


def _worker(channel: Connection) -> None:
    while True:
        job = channel.recv()
        if job is None:
            return
        channel.send(asyncio.run(_run_job(job, channel)))


class LoadGenerator:
    """``processes`` worker processes, started once, that run one measurement at a time.

    ``perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for every process, so the
    parent names the start instant and reads the span's ends in the same terms.
    """

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._channels: list[Connection] = []
        self._processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child,), daemon=True)
            process.start()
            self._channels.append(parent)
            self._processes.append(process)

    def close(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(OSError):
                channel.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, *, host: str, port: int, plans: Sequence[ClientPlan], seconds: float,
            warm_up: Sequence[Request] = (), cookie: str = "", capture: str = "",
            on_start: Callable[[], None] | None = None) -> Outcome:
        """Run ``plans`` (one client each) against ``host:port`` for ``seconds``.

        ``cookie`` is sent by every client; ``capture`` names a cookie each client picks
        up from the first answer that sets it. ``on_start`` is called at the instant the
        clients start (to read the server's CPU). After a failed warm-up nothing is
        measured and the outcome holds the failures.
        """
        workers = min(len(self._channels), len(plans))
        shares = [list(plans[i::workers]) for i in range(workers)]
        for channel, share in zip(self._channels, shares, strict=False):
            channel.send(_Job(host, port, cookie, capture, list(warm_up), share, seconds))
        answers = [channel.recv() for channel in self._channels[:workers]]
        failed = [a for a in answers if isinstance(a, Outcome)]
        if failed:
            for channel, answer in zip(self._channels, answers, strict=False):
                if answer == "ready":  # the others were ready: let them run and end
                    channel.send(time.perf_counter())
                    channel.recv()
            merged = Outcome()
            for one in failed:
                merged.merge(one)
            return merged
        start_at = time.perf_counter() + 0.2
        for channel in self._channels[:workers]:
            channel.send(start_at)
        time.sleep(max(0.0, start_at - time.perf_counter()))
        if on_start is not None:
            on_start()
        merged = Outcome()
        for channel in self._channels[:workers]:
            merged.merge(channel.recv())
        return merged


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants that
    still run, every thread included."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for process in processes():
        parents[process.pid] = process.parent
        cpu[process.pid] = process.cpu
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total
