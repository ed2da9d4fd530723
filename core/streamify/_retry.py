"""One place that decides what a failure means, and how long to wait. No I/O.

Every failure of a part PUT or control call is classified once:

- ``RETRY``: transient (connection reset, timeout, 5xx, 429/503 SlowDown, RequestTimeout,
  BadDigest: the body was damaged on the way, so read it again and resend);
- ``RESIGN``: the presigned URL expired or was rejected; sign again and resend;
- ``UPLOAD_GONE``: the multipart upload no longer exists;
- ``FATAL``: anything else; retrying cannot help.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Action", "PartRejected", "backoff_delay", "classify_status", "parse_retry_after"]


class Action(enum.Enum):
    RETRY = "retry"
    RESIGN = "resign"
    UPLOAD_GONE = "upload gone"
    FATAL = "fatal"


@dataclass
class PartRejected(Exception):
    """Storage answered a part PUT with an error status."""

    status: int
    code: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}".strip()


_RETRY_CODES = {
    "RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "BadDigest",
    "XAmzContentSHA256Mismatch", "RequestTimeTooSkewed", "IncompleteBody", "OperationAborted",
}
_RESIGN_CODES = {"AccessDenied", "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired",
                 "TokenRefreshRequired"}
_GONE_CODES = {"NoSuchUpload"}


def classify_status(status: int, code: str = "") -> Action:
    """Classify an HTTP error answer from storage by its status and S3 error code."""
    if code in _GONE_CODES or (status == 404 and code in ("", "NoSuchKey")):
        return Action.UPLOAD_GONE
    if code in _RETRY_CODES or status in (408, 429) or status >= 500:
        return Action.RETRY
    if status == 403 or code in _RESIGN_CODES:
        return Action.RESIGN
    return Action.FATAL


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay form; ``None`` if absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def backoff_delay(attempt: int, *, base: float, cap: float,
                  retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th retry (1-based).

    A server's ``Retry-After`` is a floor: never come back sooner than it asked.
    """
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap * 3))
    return delay
