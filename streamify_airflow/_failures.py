"""Streamify errors as Airflow task failures: no retry for what a retry cannot fix.

A missing or changed source, refused credentials, a destination outside what the
principal may write, a bad connection or option: the task fails at once with the core's
one-line message. Everything else (storage unreachable, parts that ran out of attempts,
an upload aborted behind our back) is retried by Airflow, and the retry resumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from streamify import (
    AccessDeniedError,
    ConfigError,
    DestinationError,
    IntegrityError,
    SourceError,
    StreamifyError,
    UploadCancelledError,
)

__all__ = ["FINAL_ERRORS", "task_errors", "task_failure"]

FINAL_ERRORS: tuple[type[StreamifyError], ...] = (
    ConfigError, SourceError, AccessDeniedError, DestinationError, IntegrityError,
    UploadCancelledError,
)
"""Errors that a retry would only repeat: the task fails without retrying."""


def task_failure(error: StreamifyError) -> AirflowException:
    """The Airflow exception to raise (``from error``) for ``error``."""
    message = " ".join(str(error).split())
    if isinstance(error, FINAL_ERRORS):
        return AirflowFailException(message)
    return AirflowException(message)


@contextlib.contextmanager
def task_errors() -> Iterator[None]:
    """Raise Streamify errors from the block as task failures (``with task_errors(): ...``)."""
    try:
        yield
    except StreamifyError as exc:
        raise task_failure(exc) from exc
