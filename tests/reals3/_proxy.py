"""A loopback TCP proxy in front of the real S3 server that counts part bytes on the wire.

Every byte is forwarded unchanged. Presigned URLs stay valid because they are signed for
the proxy's address, which is also the Host header the server checks. Just enough HTTP/1.1
is parsed on the way up (request line, Content-Length) to attribute each request body to
its ``(upload id, part number)``, so a test knows exactly how many bytes of each part had
left a process before it was killed, and how many a later run sent.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import urllib.parse
from collections import Counter

__all__ = ["CountingProxy"]

_CHUNK = 64 * 1024


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._lock = threading.Lock()
        self._received: Counter[tuple[str, int]] = Counter()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def part_bytes(self, upload_id: str) -> dict[int, int]:
        """Body bytes received so far for each part number of ``upload_id``."""
        with self._lock:
            return {number: count for (uid, number), count in self._received.items()
                    if uid == upload_id}

    def close(self) -> None:
        self._server.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            sock.close()

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
        with self._lock:
            self._sockets.update((client, upstream))
        threading.Thread(target=self._pipe_down, args=(upstream, client), daemon=True).start()
        try:
            self._pipe_up(client.makefile("rb"), upstream)
        except OSError:
            pass
        finally:
            # A dead client leaves the server with a cut body, as it would without us.
            self._drop(client, upstream)

    def _pipe_up(self, reader: io.BufferedReader, upstream: socket.socket) -> None:
        while True:
            request_line = reader.readline()
            if not request_line:
                return
            head = [request_line]
            length = 0
            while True:
                line = reader.readline()
                if not line:
                    return
                head.append(line)
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            upstream.sendall(b"".join(head))
            key = self._part_key(request_line)
            while length:
                chunk = reader.read1(min(length, _CHUNK))
                if not chunk:
                    return
                if key is not None:
                    with self._lock:
                        self._received[key] += len(chunk)
                upstream.sendall(chunk)
                length -= len(chunk)

    @staticmethod
    def _part_key(request_line: bytes) -> tuple[str, int] | None:
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        if method != "PUT" or "partNumber" not in query or "uploadId" not in query:
            return None
        return query["uploadId"][0], int(query["partNumber"][0])

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
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            self._sockets.difference_update(sockets)
