"""Events the engine emits. Front ends subscribe; the engine never draws a bar itself."""

from __future__ import annotations

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
]


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
    attempt: int
    delay: float
    reason: str


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


Event = Started | Resumed | Restarted | Progress | PartDone | Retrying | Paused | Completed | Failed
Subscriber = Callable[[Event], None]
