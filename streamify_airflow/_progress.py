"""``ProgressLog``: the engine's events as task log lines, at most one every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from streamify import (
    Completed,
    Event,
    Progress,
    Restarted,
    Resumed,
    Retrying,
    Started,
    Verifying,
)

__all__ = ["ProgressLog", "TaskLog", "format_bytes", "format_duration"]

MiB = 1024 * 1024


class TaskLog(Protocol):
    """What is used of a logger: the task's (``self.log``) or any ``logging.Logger``."""

    def info(self, event: Any, *args: Any) -> Any: ...

    def warning(self, event: Any, *args: Any) -> Any: ...


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressLog:
    """Subscribe an instance to an upload: it logs the start, a resume, retries, the end,
    and between them a progress line (percent, bytes, MiB/s, ETA) every ``interval``
    seconds. Speed counts only what this attempt sent, never the bytes S3 already held,
    and the engine's byte count never counts a retried part twice. A destination that
    already held the source (no upload started or resumed) logs nothing: the caller
    says so in one line."""

    def __init__(self, log: TaskLog, *, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._label = ""
        self._began = False
        self._base = 0
        self._started: float | None = None
        self._last = float("-inf")

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        log = self._log
        if isinstance(event, Started):
            self._began = True
            self._label = str(event.destination)
            log.info("uploading %s to %s in %d part%s of %s (upload %s)",
                     format_bytes(event.total_bytes), self._label, event.parts,
                     "" if event.parts == 1 else "s", format_bytes(event.part_size),
                     event.upload_id)
        elif isinstance(event, Resumed):
            self._began = True
            log.info("resuming upload %s: S3 already holds %s in %d verified parts "
                     "(found by %s); only the rest is sent", event.upload_id,
                     format_bytes(event.bytes_present), event.parts_present, event.found_by)
        elif isinstance(event, Restarted):
            log.warning("upload %s was gone (%s); started a fresh one",
                        event.old_upload_id, event.reason)
        elif isinstance(event, Verifying):
            if self._due() or event.bytes_checked == event.total_bytes:
                log.info("checking the parts S3 holds against the source: %s of %s",
                         format_bytes(event.bytes_checked), format_bytes(event.total_bytes))
        elif isinstance(event, Progress):
            if self._started is None:
                self._started = self._last = self._clock()
                self._base = event.bytes_done
            elif self._due():
                log.info("%s", self.line(event.bytes_done, event.total_bytes))
        elif isinstance(event, Retrying):
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s",
                        event.what, event.attempt, event.reason, event.delay)
        elif isinstance(event, Completed) and self._began:
            log.info("uploaded %s: %s, ETag %s", event.destination,
                     format_bytes(event.size), event.etag)

    def _due(self) -> bool:
        now = self._clock()
        if now - self._last < self._interval:
            return False
        self._last = now
        return True

    def line(self, done: int, total: int) -> str:
        """``45.0% (115.2 MiB of 256.0 MiB), 80.1 MiB/s, ETA 1m45s``."""
        elapsed = self._clock() - (self._started or 0.0)
        sent = max(0, done - self._base)
        rate = sent / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * done / total if total else 100.0
        eta = format_duration((total - done) / rate) if rate > 0 else "unknown"
        return (f"{self._label}: {percent:.1f}% ({format_bytes(done)} of "
                f"{format_bytes(total)}), {rate / MiB:.1f} MiB/s, ETA {eta}")
