"""The plain-word message a widget shows for an error."""

from __future__ import annotations

from streamify import (
    AccessDeniedError,
    DestinationError,
    EndpointError,
    SourceChangedError,
    SourceError,
    StreamifyError,
    UploadCancelledError,
)

__all__ = ["plain_error"]

_LEADS: tuple[tuple[type[StreamifyError], str], ...] = (
    (UploadCancelledError, "Cancelled"),
    (AccessDeniedError, "Storage refused access"),
    (EndpointError, "Storage could not be reached"),
    (DestinationError, "The destination is not usable"),
    (SourceChangedError, "The file changed since this upload began"),
    (SourceError, "The file could not be read"),
)


def plain_error(exc: BaseException) -> str:
    """One or two sentences for a person: what happened, then the core's details (which
    already name the file or key and what to do)."""
    for kind, lead in _LEADS:
        if isinstance(exc, kind):
            return f"{lead}: {exc}"
    if isinstance(exc, StreamifyError):
        return f"The upload stopped: {exc}"
    return (f"The upload stopped on an unexpected error ({type(exc).__name__}: {exc}); "
            "press Start to try again")
