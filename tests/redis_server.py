"""Debian's redis-server on loopback, one per test: started, stopped, killed and restarted.

``RedisServer`` runs ``/usr/bin/redis-server`` on 127.0.0.1 and a free port, with no
persistence (``--save '' --appendonly no``) and its working directory in a temporary
directory of its own. ``start()`` returns once the server answers PING; ``stop()`` ends
it with SIGTERM, ``kill()`` with SIGKILL, and ``start()`` again brings it back on the
same port, so a test can take the store away from a running service and give it back.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["REDIS_SERVER", "RedisServer"]

REDIS_SERVER = Path("/usr/bin/redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on ``127.0.0.1:port``; ``url`` is its database 0."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="streamify-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with "
                                   f"{self._process.returncode} before answering PING")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING "
                                   f"within {timeout} s")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """End the server with SIGTERM and wait for it to exit."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """End the server with SIGKILL (no shutdown of its own) and reap it."""
        self._end(signal.SIGKILL, 10.0)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
