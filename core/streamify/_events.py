"""Events the engine emits. Front ends subscribe; the engine never draws a bar itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ._destination import Destination

__all__ = [
    "Completed",
    "Event",
    "Failed",
    "PartDone",
    "Paused",
    "Progress",
    "Restarted",
    "Resumed",
    "Retrying",
    "Started",
    "Subscriber",
    "Subscribers",
    "Verifying",
]

_log = logging.getLogger("streamify")


@dataclass(frozen=True)
class Started:
    destination: Destination
    upload_id: str
    total_bytes: int
    parts: int
    part_size: int


@dataclass(frozen=True)
class Resumed:
    """An open upload was found; ``bytes_present`` are already in S3 and verified."""

    upload_id: str
    bytes_present: int
    parts_present: int
    found_by: str
    """``"state"`` (local hint) or ``"listing"`` (ListMultipartUploads, no local state)."""


@dataclass(frozen=True)
class Restarted:
    """The old upload was gone (aborted behind our back); a fresh one was started."""

    old_upload_id: str
    reason: str


@dataclass(frozen=True)
class Verifying:
    """Parts S3 already holds are being re-read and hashed to check them against the source."""

    bytes_checked: int
    total_bytes: int
    """Bytes to check in this step."""


@dataclass(frozen=True)
class Progress:
    """``bytes_done`` counts parts already present, parts sent, and bytes in flight."""

    bytes_done: int
    total_bytes: int


@dataclass(frozen=True)
class PartDone:
    number: int
    size: int


@dataclass(frozen=True)
class Retrying:
    number: int
    """The part being retried; 0 for a control call (``call`` says which)."""
    attempt: int
    delay: float
    reason: str
    call: str = ""
    """The control call being retried ("completing upload to s3://b/k"), for number 0."""

    @property
    def what(self) -> str:
        """What is retried, in words: "part 3" or the control call."""
        return f"part {self.number}" if self.number else self.call


@dataclass(frozen=True)
class Paused:
    bytes_done: int
    total_bytes: int


@dataclass(frozen=True)
class Completed:
    destination: Destination
    size: int
    etag: str


@dataclass(frozen=True)
class Failed:
    error: Exception


Event = (Started | Resumed | Restarted | Verifying | Progress | PartDone | Retrying | Paused
         | Completed | Failed)
Subscriber = Callable[[Event], None]


class Subscribers:
    """The callbacks listening to one upload. A callback that raises is logged and skipped:
    a broken progress bar must not stop, or silently fail, the upload it watches."""

    def __init__(self) -> None:
        self._callbacks: list[Subscriber] = []
        self._lock = threading.Lock()

    def add(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def emit(self, event: Event) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                _log.exception("event subscriber %r raised on %s; the upload goes on",
                               callback, type(event).__name__)
