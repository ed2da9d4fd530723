"""What one run of an upload did: the answer every front end reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._destination import Destination

__all__ = ["UploadResult"]


@dataclass(frozen=True, kw_only=True)
class UploadResult:
    """What one run of an upload did."""

    destination: Destination
    status: Literal["completed", "paused"]
    upload_id: str
    size: int
    etag: str
    parts: int
    bytes_sent: int
    """Bytes this run sent (retries included)."""
    bytes_resumed: int
    """Bytes that were already in S3 and verified, so not sent again."""
    resumed: bool
    restarted: bool
    seconds: float
    skipped: bool = False
    """The destination already held exactly this source, so nothing was uploaded (see
    ``UploadConfig.if_exists``)."""
