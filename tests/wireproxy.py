"""A loopback HTTP/1.1 proxy in front of an S3 server: counts, throttles, freezes, cuts and fails.

The one proxy of the tests and the benchmarks (``benchmarks/resume.py`` imports it too).
Every byte is forwarded unchanged, so request signatures stay valid as long as the client
was pointed at the proxy's address (the Host header the server checks is the proxy's, as
the signature expects). Just enough of each request is parsed on the way up (request line,
Content-Length) to tell data bodies (parts, ``PUT ...?partNumber=N&uploadId=U``, and whole
objects, ``PUT /bucket/key``) from the rest.

Counts are taken after a chunk was handed to the server's socket, never before, so they
say to the byte what had left the client at a crash. The controls:

- ``rate``: bytes per second for everything going up, shared by all connections (``None``
  is no limit), so several tools can be slowed alike whatever their own settings;
- ``freeze()``: stop forwarding and wait until no chunk is in flight, so that the counts
  are exactly what the server has received at that instant;
- ``cut()``: close every connection open now (the server sees bodies cut short, as after
  a crash or a dropped network) and forward again for new connections;
- ``cut_parts(after, count)``: close the connection of each of the next ``count`` part
  bodies once ``after`` of its bytes reached the server, as a network failing mid-part;
- ``fail_requests(status, code, ...)``: answer the next matching requests with an S3 error
  (``503 SlowDown`` with ``Retry-After``, ``500 InternalError``) without forwarding them;
- ``reset_requests(...)``: close the connection of the next matching requests before they
  are forwarded (the client sees the connection reset with no answer);
- ``stall_responses(seconds, ...)``: forward the next matching requests, but hold their
  answers for ``seconds`` (longer than the client's read timeout), then drop the connection;
- ``truncate_responses(...)``: pass only the head and half the body of the next matching
  answers, then drop the connection (a response cut short, its Content-Length a lie);
- ``rewrite_responses(rewrite, ...)``: forward the next matching requests, pass their
  answers' bodies through ``rewrite`` (the head kept, its length made right), as a store
  or a proxy in between that answers wrongly (a part listed with another size, an error
  in a 200 answer, a listing cut short);
- ``delay_requests(seconds, ...)``: keep the next matching requests ``seconds`` before
  forwarding them, as a PUT that reaches the server later than it left (a presigned URL
  that expires on the way);
- ``hold_requests(...)``: keep the matching requests from the server, their clients
  waiting, until ``release()``; ``held`` counts them (how many were in flight at once);
- ``retarget(upstream)``: new connections go to another server (a load balancer failing
  over from a dead instance); ``cut()`` then drops the ones still open.

Requests are matched by ``(method, target)``; the default matches part uploads.
``faults`` counts what was injected, by kind (``cut``, ``503 SlowDown``, ``stall``...).

A request body in chunked transfer encoding cannot be attributed; such a connection is
passed through raw, counted in ``bytes_up`` only, and ``unparsed`` says how many there were.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Counts", "Match", "Rewrite", "WireProxy", "any_request", "part_puts"]

_CHUNK = 64 * 1024

Match = Callable[[str, str], bool]
"""Whether a request, by its method and target (path and query), is the one to hit."""

Rewrite = Callable[[bytes], bytes]
"""What an answer's body becomes (``rewrite_responses``)."""


def part_puts(method: str, target: str) -> bool:
    """Data uploads: parts (``PUT ...?partNumber=N&uploadId=U``) and whole objects (``PUT
    /bucket/key``, a file that fits in one part)."""
    return _part_key(f"{method} {target} HTTP/1.1".encode("latin-1")) is not None


def any_request(method: str, target: str) -> bool:
    return True


@dataclass
class _Rule:
    """One kind of fault waiting for ``count`` more requests that ``match``."""

    kind: str
    match: Match
    count: int
    status: int = 0
    code: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    until: float | None = None
    """For a rule that lasts a while instead of a count: when it ends (monotonic)."""
    rewrite: Rewrite | None = None


@dataclass
class _Link:
    """What the answer path of one client connection must do to the next answer."""

    stall: float = 0.0
    truncate: bool = False
    rewrite: Rewrite | None = None


@dataclass(frozen=True)
class Counts:
    bytes_up: int
    """Every byte forwarded to the server: request lines, headers and bodies."""
    part_bytes: int
    """Body bytes of data uploads (``UploadPart``, and ``PutObject``), whatever the upload."""
    parts: dict[tuple[str, int], int] = field(default_factory=dict)
    """Body bytes per (upload id, part number); a whole object's PUT is ``("put:<path>", 1)``."""
    connections: int = 0
    """Client connections accepted."""
    part_connections: int = 0
    """Client connections that carried at least one part body."""

    def __sub__(self, before: Counts) -> Counts:
        parts = {key: count - before.parts.get(key, 0) for key, count in self.parts.items()
                 if count > before.parts.get(key, 0)}
        return Counts(self.bytes_up - before.bytes_up, self.part_bytes - before.part_bytes,
                      parts, self.connections - before.connections,
                      self.part_connections - before.part_connections)


class WireProxy:
    """Listens on a free loopback port (``url``) and forwards to ``upstream``."""

    def __init__(self, upstream: str, rate: float | None = None) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.rate = rate
        self.unparsed = 0
        self._cond = threading.Condition()
        self._flowing = True
        self._in_flight = 0
        self._generation = 0
        self._bytes_up = 0
        self._parts: Counter[tuple[str, int]] = Counter()
        self._connections = 0
        self._part_connections = 0
        self._cuts_left = 0
        self._cut_after = 0
        self._rules: list[_Rule] = []
        self.faults: Counter[str] = Counter()
        """Faults injected so far, by kind."""
        self.requests: list[tuple[str, str]] = []
        """Every request seen, as ``(method, target)``, in order of arrival."""
        self._closed = threading.Event()
        self._hold: Match | None = None
        self.held = 0
        """Requests kept from the server by ``hold_requests`` so far."""
        self._sockets: set[socket.socket] = set()
        self._clock = 0.0  # the earliest time the next throttled chunk may leave
        self._clock_lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    # ------------------------------------------------------------------ controls
    def counts(self) -> Counts:
        with self._cond:
            return self._counts()

    def part_bytes(self, upload_id: str) -> dict[int, int]:
        """Body bytes the server received so far for each part number of ``upload_id``."""
        with self._cond:
            return {number: count for (uid, number), count in self._parts.items()
                    if uid == upload_id}

    def freeze(self, timeout: float = 10.0) -> Counts:
        """Stop forwarding; return the counts once no chunk is on its way to the server."""
        with self._cond:
            self._flowing = False
            self._cond.wait_for(lambda: self._in_flight == 0, timeout)
            return self._counts()

    def cut(self) -> None:
        """Close every open connection, then forward again (for new connections only)."""
        with self._cond:
            self._generation += 1
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)
        with self._cond:
            self._flowing = True
            self._cond.notify_all()

    def cut_parts(self, after: int, count: int = 1) -> None:
        """Cut each of the next ``count`` part bodies after ``after`` bytes."""
        with self._cond:
            self._cuts_left, self._cut_after = count, after

    def fail_requests(self, status: int, code: str, *, count: int = 1,
                      retry_after: float | None = None, match: Match = part_puts) -> None:
        """Answer the next ``count`` matching requests with ``status`` and an S3 error
        ``code`` (and ``Retry-After`` when given); they never reach the server."""
        self._add(_Rule(f"{status} {code}", match, count, status=status, code=code,
                        retry_after=retry_after))

    def reset_requests(self, *, count: int = 1, match: Match = part_puts) -> None:
        """Close the connection of the next ``count`` matching requests, unforwarded."""
        self._add(_Rule("reset", match, count))

    def stall_responses(self, seconds: float, *, count: int = 1,
                        match: Match = part_puts) -> None:
        """Forward the next ``count`` matching requests, hold their answers ``seconds``,
        then drop the connection without them."""
        self._add(_Rule("stall", match, count, seconds=seconds))

    def truncate_responses(self, *, count: int = 1, match: Match = any_request) -> None:
        """Forward the next ``count`` matching requests; pass their answers' head and half
        their body, then drop the connection."""
        self._add(_Rule("truncate", match, count))

    def rewrite_responses(self, rewrite: Rewrite, *, count: int = 1,
                          match: Match = any_request) -> None:
        """Forward the next ``count`` matching requests; answer each with its server's
        status and headers but the body ``rewrite(body)`` (Content-Length set to fit,
        then the connection closed). For answers with a Content-Length (S3's control
        calls), not chunked ones."""
        self._add(_Rule("rewrite", match, count, rewrite=rewrite))

    def delay_requests(self, seconds: float, *, count: int = 1,
                       match: Match = part_puts) -> None:
        """Keep each of the next ``count`` matching requests ``seconds`` from the server,
        then forward it unchanged."""
        self._add(_Rule("delay", match, count, seconds=seconds))

    def fail_for(self, seconds: float, status: int, code: str, *,
                 retry_after: float | None = None, match: Match = any_request) -> None:
        """Answer every matching request for the next ``seconds`` with ``status`` and
        ``code``, unforwarded (an outage that answers, such as a 503 from a proxy)."""
        self._add(_Rule(f"{status} {code}", match, 1, status=status, code=code,
                        retry_after=retry_after, until=time.monotonic() + seconds))

    def reset_for(self, seconds: float, *, match: Match = any_request) -> None:
        """Close the connection of every matching request for the next ``seconds``,
        unforwarded (a server that is down behind a live address)."""
        self._add(_Rule("reset", match, 1, until=time.monotonic() + seconds))

    def refuse_connections(self, seconds: float) -> None:
        """Close the listening socket and every open connection: for ``seconds`` a new
        connection is refused, as by a stopped server; then listen on the same port again."""
        port = self._server.getsockname()[1]
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self.faults["refused"] += 1
        self.cut()

        def reopen() -> None:
            if self._closed.wait(seconds):
                return
            self._server = socket.create_server(("127.0.0.1", port))
            threading.Thread(target=self._accept, daemon=True).start()

        threading.Thread(target=reopen, daemon=True).start()

    def hold_requests(self, *, match: Match = part_puts) -> None:
        """Keep every matching request from the server, its client waiting for the
        answer, until ``release()``."""
        with self._cond:
            self._hold = match

    def release(self) -> None:
        """Forward the held requests, and the matching ones after them."""
        with self._cond:
            self._hold = None
            self._cond.notify_all()

    def retarget(self, upstream: str) -> None:
        """Send new connections to ``upstream`` (open ones stay where they are)."""
        parsed = urllib.parse.urlsplit(upstream)
        with self._cond:
            self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)

    def disarm(self) -> None:
        """Drop every fault still waiting (rules and ``cut_parts``)."""
        with self._cond:
            self._rules, self._cuts_left = [], 0

    def pending(self) -> int:
        """Injected faults still waiting for a request to hit (timed ones not counted)."""
        with self._cond:
            return self._cuts_left + sum(rule.count for rule in self._rules
                                         if rule.until is None)

    def close(self) -> None:
        self._closed.set()
        self.release()
        with contextlib.suppress(OSError):  # wakes accept(); close() alone does not on Linux
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self.cut()

    def _add(self, rule: _Rule) -> None:
        with self._cond:
            self._rules.append(rule)

    def _take(self, method: str, target: str) -> _Rule | None:
        with self._cond:
            now = time.monotonic()
            self._rules = [r for r in self._rules if r.until is None or r.until > now]
            for rule in self._rules:
                if rule.count and rule.match(method, target):
                    if rule.until is None:
                        rule.count -= 1
                    self._rules = [r for r in self._rules if r.count]
                    self.faults[rule.kind] += 1
                    return rule
            return None

    def _counts(self) -> Counts:
        return Counts(self._bytes_up, sum(self._parts.values()), dict(self._parts),
                      self._connections, self._part_connections)

    # ------------------------------------------------------------------ forwarding
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            client.close()
            return
        with self._cond:
            generation = self._generation
            self._connections += 1
            self._sockets.update((client, upstream))
        link = _Link()
        threading.Thread(target=self._pipe_down, args=(upstream, client, link),
                         daemon=True).start()
        try:
            self._pipe_up(client.makefile("rb"), upstream, client, link, generation)
        except (OSError, ValueError):
            pass
        finally:
            # A dead client leaves the server with a cut body, as it would without us.
            self._drop(client, upstream)

    def _forward(self, upstream: socket.socket, data: bytes, generation: int,
                 part: tuple[str, int] | None) -> bool:
        """Send ``data`` up (throttled, unless frozen or cut); False once the link is cut."""
        self._throttle(len(data))
        with self._cond:
            self._cond.wait_for(lambda: self._flowing or self._generation != generation)
            if self._generation != generation:
                return False
            self._in_flight += 1
        try:
            upstream.sendall(data)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
        with self._cond:
            self._bytes_up += len(data)
            if part is not None:
                self._parts[part] += len(data)
        return True

    def _throttle(self, amount: int) -> None:
        rate = self.rate
        if not rate:
            return
        with self._clock_lock:
            now = time.monotonic()
            start = max(self._clock, now)
            self._clock = start + amount / rate
        if start > now:
            time.sleep(start - now)

    def _pipe_up(self, reader: io.BufferedReader, upstream: socket.socket,
                 client: socket.socket, link: _Link, generation: int) -> None:
        carried_parts = False
        while True:
            request_line = reader.readline()
            if not request_line:
                return
            head = [request_line]
            length = 0
            chunked = False
            while True:
                line = reader.readline()
                if not line:
                    return
                head.append(line)
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            method, target, _ = request_line.decode("latin-1").split(" ", 2)
            with self._cond:
                self.requests.append((method, target))
                if self._hold is not None and self._hold(method, target):
                    self.held += 1
                    self._cond.wait_for(lambda: self._hold is None or self._closed.is_set())
            rule = None if chunked else self._take(method, target)
            if rule is not None and rule.kind == "reset":
                return
            if rule is not None and rule.status:
                _answer_error(reader, client, length, rule)
                return
            if rule is not None and rule.kind == "delay":
                self._closed.wait(rule.seconds)
            elif rule is not None:
                link.stall, link.truncate = rule.seconds, rule.kind == "truncate"
                link.rewrite = rule.rewrite
            if not self._forward(upstream, b"".join(head), generation, None):
                return
            if chunked:
                with self._cond:
                    self.unparsed += 1
                while data := reader.read1(_CHUNK):
                    if not self._forward(upstream, data, generation, None):
                        return
                return
            part = _part_key(request_line)
            cut_at = None
            if part is not None:
                with self._cond:
                    self._part_connections += not carried_parts
                    if self._cuts_left:
                        self._cuts_left -= 1
                        cut_at = self._cut_after
                carried_parts = True
            sent = 0
            while length:
                room = _CHUNK if cut_at is None else cut_at - sent
                data = reader.read1(min(length, _CHUNK, room))
                if not data:
                    return
                if not self._forward(upstream, data, generation, part):
                    return
                length -= len(data)
                sent += len(data)
                if cut_at is not None and sent >= cut_at:
                    with self._cond:
                        self.faults["cut"] += 1
                    return  # the caller closes both sides: the body stays cut short

    def _pipe_down(self, upstream: socket.socket, client: socket.socket, link: _Link) -> None:
        try:
            while data := upstream.recv(_CHUNK):
                if link.stall:
                    self._closed.wait(link.stall)
                    return  # the answer never arrives: the client's read timeout fires
                if link.truncate:
                    client.sendall(_truncated(data, upstream))
                    return
                if link.rewrite is not None:
                    client.sendall(_rewritten(data, upstream, link.rewrite))
                    return
                client.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(client, upstream)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            _close(sock)
        with self._cond:
            self._sockets.difference_update(sockets)


def _answer_error(reader: io.BufferedReader, client: socket.socket, length: int,
                  rule: _Rule) -> None:
    """Read the request's body, answer it with the rule's S3 error, close the connection."""
    while length:
        data = reader.read1(min(length, _CHUNK))
        if not data:
            return
        length -= len(data)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{rule.code}</Code>'
            f"<Message>injected by the wire proxy</Message></Error>").encode()
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(rule.status, "Error")
    head = [f"HTTP/1.1 {rule.status} {reason}", "Content-Type: application/xml",
            f"Content-Length: {len(body)}", "Connection: close"]
    if rule.retry_after is not None:
        head.append(f"Retry-After: {rule.retry_after:g}")
    with contextlib.suppress(OSError):
        client.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def _truncated(data: bytes, upstream: socket.socket) -> bytes:
    """The first bytes of an answer: its head and half its body (half its head if it has
    no body), read on from ``upstream`` as far as needed."""
    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
        more = upstream.recv(_CHUNK)
        if not more:
            break
        data += more
    head, sep, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if not sep or length == 0:
        return head[: len(head) // 2]
    while len(body) < length // 2:
        more = upstream.recv(_CHUNK)
        if not more:
            break
        body += more
    return head + sep + body[: length // 2]


def _rewritten(data: bytes, upstream: socket.socket, rewrite: Rewrite) -> bytes:
    """The whole answer that begins with ``data`` (read on from ``upstream``), its body
    replaced by ``rewrite(body)``: the head kept but for the length, which fits the new
    body, and ``Connection: close`` (the connection ends after it)."""
    while b"\r\n\r\n" not in data:
        more = upstream.recv(_CHUNK)
        if not more:
            break
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = {name.strip().lower(): value.strip() for name, _, value in
              (line.partition(b":") for line in lines[1:])}
    length = int(fields.get(b"content-length", b"0"))
    while len(body) < length:
        more = upstream.recv(_CHUNK)
        if not more:
            break
        body += more
    new = rewrite(body[:length])
    kept = [line for line in lines[1:] if line.partition(b":")[0].strip().lower()
            not in (b"content-length", b"connection", b"transfer-encoding")]
    return b"\r\n".join([lines[0], *kept, b"Content-Length: %d" % len(new),
                           b"Connection: close", b"", new])


def _part_key(request_line: bytes) -> tuple[str, int] | None:
    """``(upload id, part number)`` of a data upload: a part, or a whole object's ``PUT``
    (``PutObject``, as one part of ``put:<path>``); ``None`` for any other request."""
    method, target, _ = request_line.decode("latin-1").split(" ", 2)
    if method != "PUT":
        return None
    split = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
    if "partNumber" in query and "uploadId" in query:
        return query["uploadId"][0], int(query["partNumber"][0])
    is_object = "/" in split.path.strip("/")  # /bucket/key, not /bucket
    if is_object and all(name.lower().startswith("x-amz-") or name == "x-id" for name in query):
        return f"put:{split.path}", 1
    return None


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
