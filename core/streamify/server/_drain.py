"""Draining a replica on SIGTERM: unready first, then stop, then exit 0.

On SIGTERM, ``DrainingServer`` marks the app's ``Drain`` (``/readyz`` answers 503 from
then on) and keeps serving for ``drain_delay`` seconds, so that the load balancer sees the
replica unready and stops sending it requests. Then uvicorn's graceful shutdown runs:
the listener closes, idle connections are closed, and requests in flight have
``drain_deadline`` seconds (``timeout_graceful_shutdown``) to finish. A request still
running then is cancelled; one still waiting on storage in a worker thread cannot be, so
the process exits without waiting for it (its client sees the connection close). Either
way the exit status is 0: the replica stopped as asked.

A second SIGTERM skips what is left of the delay; SIGINT (Ctrl-C) stops without one, as
uvicorn does. One worker process per replica: ``streamify serve --workers N`` runs
uvicorn's own supervisor, whose workers stop on SIGTERM without the delay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType

import uvicorn

__all__ = ["Drain", "DrainingServer"]

_log = logging.getLogger("streamify.server.drain")

# After the deadline, how long cancelled requests get to end before the process leaves
# without them.
_CANCEL_GRACE = 1.0


class Drain:
    """Whether this replica is draining: set once, by SIGTERM; read by ``/readyz``."""

    def __init__(self) -> None:
        self._draining = False

    def begin(self) -> None:
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining as above on SIGTERM."""

    def __init__(self, config: uvicorn.Config, *, drain: Drain, delay: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.delay = delay
        self._stop_at: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # Runs between two bytecodes of the main thread: flags only, no logging here.
        now = time.monotonic()
        if self._stop_at is None:
            self.drain.begin()
            self._stop_at = now + self.delay
        else:
            self._stop_at = now

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None:
            if not self._announced:
                self._announced = True
                _log.info("SIGTERM: unready now, stopping in %.3g s; requests in flight "
                          "then have %.3g s to finish", max(self._stop_at - time.monotonic(),
                                                            0.0),
                          self.config.timeout_graceful_shutdown or 0.0)
            if time.monotonic() >= self._stop_at:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        deadline = time.monotonic() + _CANCEL_GRACE
        while self.server_state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.server_state.tasks:
            # Cancelled, but not ending: asyncio would wait for them at exit.
            _leave(f"{len(self.server_state.tasks)} requests still running past the "
                   "drain deadline are cut")

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        super().run(sockets)
        if self._stop_at is None:
            return
        # A cancelled request's answer is sent, but the worker thread it waited on may
        # still be in a call to storage, and Python waits for such threads at exit.
        deadline = time.monotonic() + _CANCEL_GRACE
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [t for t in threading.enumerate()
                 if t is not threading.current_thread() and not t.daemon and t.is_alive()]
        if stuck:
            _leave(f"{len(stuck)} worker threads still waiting on storage past the drain "
                   "deadline are cut")


def _leave(why: str) -> None:
    """Exit now, status 0, without waiting for threads that would hold the process."""
    _log.error(why)
    logging.shutdown()
    os._exit(0)
