"""Every error Streamify raises on purpose.

The tree::

    StreamifyError                  base; ``exit_code`` for the CLI, ``str()`` is one clear line
    ├── ConfigError                 a bad option or size (exit 2)
    ├── SourceError                 the file or URL to upload
    │   └── SourceChangedError      the source differs from the one the open upload was started with
    ├── StateStoreError             the resume state location cannot be read or written
    ├── DestinationError            bad ``s3://`` URL, missing bucket
    │   └── DestinationExistsError  another object is there and the config says refuse it
    ├── AccessDeniedError           wrong credentials or not allowed
    ├── EndpointError               the storage or API service cannot be reached (``transient``:
    │                               worth retrying; retried within the budget before it is raised)
    ├── UploadGoneError             the multipart upload was aborted or expired behind our back
    ├── TransferError               a part could not be sent within the retry budget
    ├── IntegrityError              the assembled object does not match the source
    └── UploadCancelledError        ``cancel()`` was called

Foreign errors (botocore, urllib3, OSError) are translated into this tree in one place per
boundary, always with ``raise ... from exc`` so the cause is kept for debugging.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConfigError",
    "DestinationError",
    "DestinationExistsError",
    "EndpointError",
    "IntegrityError",
    "SourceChangedError",
    "SourceError",
    "StateStoreError",
    "StreamifyError",
    "TransferError",
    "UploadCancelledError",
    "UploadGoneError",
]


class StreamifyError(Exception):
    """Base of every Streamify error. ``str(err)`` says what happened and what to do."""

    exit_code: int = 1


class ConfigError(StreamifyError, ValueError):
    """An option has a value Streamify cannot use.

    ``parameter`` names the option (``"part_size"``) when one is to blame, so a front end
    can point at its own spelling of it (a CLI flag, a form field)."""

    exit_code = 2

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class SourceError(StreamifyError):
    """The source cannot be found, opened or read."""

    exit_code = 3


class SourceChangedError(SourceError):
    """The source is not the one an open upload to the same destination was started with."""


class StateStoreError(StreamifyError):
    """The resume state location cannot be used."""

    exit_code = 4


class DestinationError(StreamifyError):
    """The destination bucket or key is wrong or does not exist."""

    exit_code = 5


class DestinationExistsError(DestinationError):
    """The destination holds an object other than the source, and
    ``UploadConfig.if_exists="refuse_different"`` says to leave it."""


class AccessDeniedError(StreamifyError):
    """The credentials are wrong or do not allow the operation."""

    exit_code = 6


class EndpointError(StreamifyError):
    """The S3 endpoint or API service cannot be reached, or answered that it cannot serve
    the request now (5xx, 429), and kept doing so for the whole retry budget.

    ``transient`` says whether trying again later may help (a refused connection, a 503)
    or not (a certificate that does not verify, 501); ``status`` is the HTTP status the
    server answered (0: no answer); ``retry_after`` is its ``Retry-After`` in seconds;
    ``connected`` is False when no connection was made, so the request surely never
    arrived."""

    exit_code = 7

    def __init__(self, message: str, *, transient: bool = False, status: int = 0,
                 retry_after: float | None = None, connected: bool = True) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.connected = connected


class UploadGoneError(StreamifyError):
    """The multipart upload no longer exists (aborted, expired, or completed elsewhere)."""

    exit_code = 8


class TransferError(StreamifyError):
    """Sending a part failed more often than the retry policy allows."""

    exit_code = 9


class IntegrityError(StreamifyError):
    """The object S3 assembled does not match the source."""

    exit_code = 10


class UploadCancelledError(StreamifyError):
    """The upload was cancelled and its multipart upload aborted."""

    exit_code = 130
