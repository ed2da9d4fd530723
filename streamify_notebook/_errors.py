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
    (AccessDeniedError, "{who} refused access"),
    (EndpointError, "{who} could not be reached"),
    (DestinationError, "The destination is not usable"),
    (SourceChangedError, "The file changed since this upload began"),
    (SourceError, "The file could not be read"),
)

# The core's messages speak to the command line; a widget's user set its arguments instead.
_WIDGET_WORDS = (
    ("api_url (--api)", "api_url"),
    ("--api", "api_url"),
    ("--endpoint-url", "endpoint_url"),
    ("rerun the same command to resume", "press Start to resume"),
    ("rerun to resume", "press Start to resume"),
)


def plain_error(exc: BaseException, *, service: bool = False) -> str:
    """One or two sentences for a person: what happened, then the core's details (which
    already name the file or key and what to do), in the widget's words. ``service``: the
    widget talks to the API service, not straight to storage."""
    who = "The API service" if service else "Storage"
    for kind, lead in _LEADS:
        if isinstance(exc, kind):
            return f"{lead.format(who=who)}: {_widget_words(str(exc))}"
    if isinstance(exc, StreamifyError):
        return f"The upload stopped: {_widget_words(str(exc))}"
    return (f"The upload stopped on an unexpected error ({type(exc).__name__}: {exc}); "
            "press Start to try again")


def _widget_words(message: str) -> str:
    for cli, widget in _WIDGET_WORDS:
        message = message.replace(cli, widget)
    return message
