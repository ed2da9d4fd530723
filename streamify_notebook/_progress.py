"""Speed and time left, worked out from progress samples. No I/O: the clock is passed in."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["RateMeter", "Speed"]


@dataclass(frozen=True, slots=True)
class Speed:
    bytes_per_second: float
    """0.0 until two samples some time apart exist."""
    seconds_left: float | None
    """``None`` while the speed is unknown."""


class RateMeter:
    """Bytes per second over the last ``window`` seconds of samples.

    A window rather than the average since the start: after a pause or a resume the speed
    shown is today's, and the bytes that were already in S3 never inflate it.

    Safe to share between threads: every part thread adds samples while the kernel's own
    thread may reset the meter.
    """

    def __init__(self, window: float = 5.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the samples (on pause, resume or a fresh start)."""
        with self._lock:
            self._samples.clear()

    def add(self, now: float, bytes_done: int, total_bytes: int) -> Speed:
        """Record that ``bytes_done`` of ``total_bytes`` were done at ``now`` (seconds)."""
        with self._lock:
            self._samples.append((now, bytes_done))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
                self._samples.popleft()
            first_time, first_bytes = self._samples[0]
        elapsed = now - first_time
        if elapsed <= 0:
            return Speed(0.0, None)
        rate = max(0.0, (bytes_done - first_bytes) / elapsed)
        if rate == 0:
            return Speed(0.0, None)
        return Speed(rate, max(0, total_bytes - bytes_done) / rate)
