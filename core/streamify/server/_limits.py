"""``RateLimiter``: per-principal token buckets. Decides only; no I/O, the clock injected.

Each principal's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second. A request takes its cost (one, plus one per part it signs) or, when the bucket
holds too few, takes nothing and learns how long to wait: the service answers 429 with
that as ``Retry-After``. Buckets live per instance, so N instances allow N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


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
