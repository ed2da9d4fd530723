"""One place that decides what a failure means, and how long to wait. No I/O.

Every failure of a part PUT or of a control call (to S3 or to the API service) is
classified here, once:

- ``RETRY``: transient (connection refused or reset, timeout, 5xx but 501, 429/503
  SlowDown, RequestTimeout, BadDigest: the body was damaged on the way, so read it again
  and resend);
- ``RESIGN``: a presigned URL expired or was rejected; sign again and resend (a control
  call has no URL to sign again: for it this means access denied);
- ``UPLOAD_GONE``: the multipart upload no longer exists;
- ``FATAL``: anything else; retrying cannot help (501 Not Implemented, a TLS certificate
  that does not verify, a clock off by minutes, an unknown access key...).

How long a transient failure is retried is one budget for every call,
:class:`RetryBudget`: attempts, backoff with full jitter, ``Retry-After`` and a time limit,
all from ``UploadConfig``.
"""

from __future__ import annotations

import enum
import random
import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DENIED_CODES",
    "Action",
    "PartRejected",
    "RetryBudget",
    "backoff_delay",
    "classify_network",
    "classify_status",
    "parse_retry_after",
]


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


_RETRY_CODES = frozenset({
    "RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "BadDigest",
    "XAmzContentSHA256Mismatch", "IncompleteBody", "OperationAborted", "Throttling",
    "ThrottlingException", "RequestLimitExceeded",
})
_RESIGN_CODES = frozenset({"AccessDenied", "SignatureDoesNotMatch", "ExpiredToken",
                           "RequestExpired", "TokenRefreshRequired"})
_GONE_CODES = frozenset({"NoSuchUpload"})
# Answers that no retry and no new signature can change: the clock, the key, the server.
_NEVER_CODES = frozenset({"RequestTimeTooSkewed", "InvalidAccessKeyId", "NotImplemented",
                          "AllAccessDisabled", "InvalidToken"})
DENIED_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "AllAccessDisabled", "RequestExpired", "TokenRefreshRequired", "403",
})
"""S3 error codes that mean the credentials are wrong or not allowed."""


def classify_status(status: int, code: str = "") -> Action:
    """Classify an HTTP error answer by its status and S3 error code (or problem kind)."""
    if code in _GONE_CODES or (status == 404 and code in ("", "NoSuchKey", "upload-gone")):
        return Action.UPLOAD_GONE
    if code in _NEVER_CODES or status == 501:
        return Action.FATAL
    if code in _RETRY_CODES or status in (408, 429) or status >= 500:
        return Action.RETRY
    if status == 403 or code in _RESIGN_CODES:
        return Action.RESIGN
    return Action.FATAL


def classify_network(exc: BaseException) -> Action:
    """Classify a failure to exchange a request at all (no HTTP answer).

    Refused, reset, timed out, a name that did not resolve: transient. A certificate that
    does not verify is not: it fails the same way every time until someone fixes it."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError) or (
                "CERTIFICATE_VERIFY_FAILED" in str(error)):
            return Action.FATAL
        error = error.__cause__ or error.__context__ or _wrapped(error)
    return Action.RETRY


def _wrapped(error: BaseException) -> BaseException | None:
    """The error a library wrapper carries beside its cause (urllib3's ``reason``, the
    first argument of botocore's and urllib3's wrappers)."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    inner = next((a for a in error.args if isinstance(a, BaseException)), None)
    return inner


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


@dataclass
class RetryBudget:
    """How long one call (a part PUT, a sign, a list, a complete...) may keep failing.

    A call gives up after ``max_attempts`` attempts or once ``retry_for`` seconds have
    passed since its first failure, whichever comes first. Until the server has answered
    once (``reached``), a connection that cannot be made at all gets at most
    ``first_contact_attempts``: a wrong address should be said within seconds, while an
    outage of a server that was answering is ridden out. Times come from the caller's
    clock (``now``), so the budget itself does no I/O.
    """

    max_attempts: int
    retry_for: float
    base: float
    cap: float
    first_contact_attempts: int = 4
    attempts: int = 0
    first_failure: float | None = None
    rng: random.Random | None = field(default=None, repr=False)

    def next_delay(self, now: float, *, retry_after: float | None = None,
                   connected: bool = True, reached: bool = True) -> float | None:
        """Record a transient failure at ``now``; the seconds to wait before the next
        attempt, or ``None`` when the budget is spent."""
        self.attempts += 1
        if self.first_failure is None:
            self.first_failure = now
        limit = self.max_attempts
        if not connected and not reached:
            limit = min(limit, self.first_contact_attempts)
        if self.attempts >= limit or now - self.first_failure >= self.retry_for:
            return None
        delay = backoff_delay(self.attempts, base=self.base, cap=self.cap,
                              retry_after=retry_after, rng=self.rng)
        left = self.retry_for - (now - self.first_failure)
        return max(0.0, min(delay, left))

    def table(self) -> dict[str, Any]:
        """This budget and :func:`classify_status` as plain data, for a program that cannot
        call them: the notebook's browser page classifies its part PUTs by this table, so
        the two cannot drift apart (JSON-ready; ``order`` is the order rules are tried)."""
        return {
            "order": ["gone", "fatal", "retry", "resign"],
            "gone": {"codes": sorted(_GONE_CODES),
                     "status_codes": {"404": ["", "NoSuchKey", "upload-gone"]}},
            "fatal": {"codes": sorted(_NEVER_CODES), "statuses": [501]},
            "retry": {"codes": sorted(_RETRY_CODES), "statuses": [408, 429],
                      "from_status": 500},
            "resign": {"codes": sorted(_RESIGN_CODES), "statuses": [403]},
            "denied_codes": sorted(DENIED_CODES),
            "max_attempts": self.max_attempts, "retry_for": self.retry_for,
            "first_contact_attempts": self.first_contact_attempts,
            "backoff_base": self.base, "backoff_max": self.cap,
        }

    def succeeded(self) -> None:
        """The call went through: a later failure starts a fresh budget."""
        self.attempts = 0
        self.first_failure = None
