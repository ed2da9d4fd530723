"""Per-principal limits, decided in process: ``RateLimiter`` (token buckets) and
``InFlightLimit`` (requests in flight). No I/O; the clock injected.

Each principal's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second. A request takes its cost (one, plus one per part it signs) or, when the bucket
holds too few, takes nothing and learns how long to wait: the service answers 429 with
that as ``Retry-After``. Buckets live per instance, so N instances allow N times the rate.

Requests in flight are counted behind ``RequestsInFlight``, a two-method interface that a
store shared by every replica (Redis) can implement as well; ``InFlightLimit`` counts in
this process.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["InFlightLimit", "RateLimiter", "RequestsInFlight"]


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


class RateLimiter:
    """Token buckets keyed by principal name."""

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
