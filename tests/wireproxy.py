"""A loopback HTTP/1.1 proxy in front of an S3 server: counts, throttles, freezes and cuts.

The one proxy of the tests and the benchmarks (``benchmarks/resume.py`` imports it too).
Every byte is forwarded unchanged, so request signatures stay valid as long as the client
was pointed at the proxy's address (the Host header the server checks is the proxy's, as
the signature expects). Just enough of each request is parsed on the way up (request line,
Content-Length) to tell part bodies (``PUT ...?partNumber=N&uploadId=U``) from the rest.

Counts are taken after a chunk was handed to the server's socket, never before, so they
say to the byte what had left the client at a crash. The controls:

- ``rate``: bytes per second for everything going up, shared by all connections (``None``
  is no limit), so several tools can be slowed alike whatever their own settings;
- ``freeze()``: stop forwarding and wait until no chunk is in flight, so that the counts
  are exactly what the server has received at that instant;
- ``cut()``: close every connection open now (the server sees bodies cut short, as after
  a crash or a dropped network) and forward again for new connections;
- ``cut_parts(after, count)``: close the connection of each of the next ``count`` part
  bodies once ``after`` of its bytes reached the server, as a network failing mid-part.

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
from dataclasses import dataclass, field

__all__ = ["Counts", "WireProxy"]

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Counts:
    bytes_up: int
    """Every byte forwarded to the server: request lines, headers and bodies."""
    part_bytes: int
    """Body bytes of part uploads (``UploadPart``), whatever the upload id."""
    parts: dict[tuple[str, int], int] = field(default_factory=dict)
    """Body bytes per (upload id, part number)."""
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

    def close(self) -> None:
        self._server.close()
        self.cut()

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
        threading.Thread(target=self._pipe_down, args=(upstream, client), daemon=True).start()
        try:
            self._pipe_up(client.makefile("rb"), upstream, generation)
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
                 generation: int) -> None:
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
                    return  # the caller closes both sides: the body stays cut short

    def _pipe_down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(_CHUNK):
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


def _part_key(request_line: bytes) -> tuple[str, int] | None:
    method, target, _ = request_line.decode("latin-1").split(" ", 2)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    if method != "PUT" or "partNumber" not in query or "uploadId" not in query:
        return None
    return query["uploadId"][0], int(query["partNumber"][0])


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
