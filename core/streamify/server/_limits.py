"""Per-principal limits and the interfaces they are used through: ``RateLimit`` (token
buckets), ``RequestsInFlight`` (requests in flight) and ``PrincipalLocks`` (one start of an
upload at a time, so the open-upload count is checked and raised as one step).

The implementations here keep their state in this process, with no I/O and the clock
injected: ``RateLimiter``, ``InFlightLimit`` and ``LocalLocks``. They serve a single
replica (the embedded default, and any service with no ``redis_url``). N replicas each
holding their own would allow N times every limit, so with ``redis_url`` set the service
uses the implementations of ``_shared_limits``, which keep the same state in Redis.

Each principal's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second. A request takes its cost (one, plus one per part it signs) or, when the bucket
holds too few, takes nothing and learns how long to wait: the service answers 429 with
that as ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

__all__ = [
    "InFlightLimit",
    "LocalLocks",
    "PrincipalLocks",
    "RateLimit",
    "RateLimiter",
    "RequestsInFlight",
]


class RateLimit(Protocol):
    """Each principal's token bucket: ``burst`` tokens, refilled at ``rate`` a second."""

    rate: float
    burst: int

    def take(self, who: str, cost: int = 1) -> int:
        """Take ``cost`` tokens from ``who``'s bucket and return 0, or take none and return
        the whole seconds (at least 1) after which the same request would pass."""
        ...


class PrincipalLocks(Protocol):
    """One holder at a time per principal, among every caller sharing the locks."""

    def hold(self, who: str) -> AbstractContextManager[None]:
        """Wait for ``who``'s lock and hold it for the ``with`` block."""
        ...


class RequestsInFlight(Protocol):
    """Counts each principal's requests in flight, up to ``cap``."""

    cap: int

    def enter(self, who: str) -> bool:
        """Count one more request of ``who``, or count nothing and say ``False`` when
        ``who`` already has ``cap`` in flight."""
        ...

    def leave(self, who: str) -> None:
        """One request of ``who`` that ``enter`` counted has been answered."""
        ...


class InFlightLimit:
    """``RequestsInFlight`` in this process."""

    def __init__(self, *, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"cap {cap} must be at least 1")
        self.cap = cap
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, who: str) -> bool:
        with self._lock:
            count = self._counts.get(who, 0)
            if count >= self.cap:
                return False
            self._counts[who] = count + 1
            return True

    def leave(self, who: str) -> None:
        with self._lock:
            count = self._counts.get(who, 0) - 1
            if count > 0:
                self._counts[who] = count
            else:
                self._counts.pop(who, None)


class LocalLocks:
    """``PrincipalLocks`` in this process: a thread lock per principal."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, who: str) -> Iterator[None]:
        with self._lock:
            lock = self._locks.setdefault(who, threading.Lock())
        with lock:
            yield


class RateLimiter:
    """``RateLimit`` in this process: token buckets keyed by principal name."""

    def __init__(self, *, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} must be positive and burst {burst} at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, as of when)
        self._lock = threading.Lock()

    def take(self, who: str, cost: int = 1) -> int:
        """Take ``cost`` tokens from ``who``'s bucket and return 0, or take none and return
        the whole seconds (at least 1) after which the same request would pass.

        A cost above ``burst`` counts as ``burst``: such a request passes once the bucket
        is full, rather than never.
        """
        cost = min(max(cost, 1), self.burst)
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= cost:
                self._buckets[who] = (tokens - cost, now)
                return 0
            self._buckets[who] = (tokens, now)
        return max(1, math.ceil((cost - tokens) / self.rate))
