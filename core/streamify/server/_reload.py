"""``LivePrincipals``: the principals as their file says now, without a restart.

The principals come from ``principals_file`` when it is set, else from the config file the
settings were loaded from (``--config``, ``STREAMIFY_CONFIG_FILE``); settings built in code
from nothing but keywords and variables have no file and never change. At most once every
``reload_interval`` seconds, the first request to authenticate reads that file (a few
kilobytes, tens of microseconds; no thread, no timer) and compares its SHA-256 with the
last one read, so a rewrite, a replaced mount or a change that keeps the size and the
modification time are all seen. A changed file is parsed and validated as at start; a file
that is missing, unreadable or invalid leaves the principals in force as they were, and
says so in one error line per version of the file (the file's path and the problem, never
a value from it). Only the principals change; every other setting in a changed config file
is named in a warning and waits for a restart. No state is shared: each replica (and each
worker process) reads the file itself, so all of them follow it within the interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from ._settings import (
    PrincipalSettings,
    ServiceSettings,
    describe_invalid,
    load_settings,
    parse_principals,
)

__all__ = ["CONFIG_LOGGER", "LivePrincipals"]

CONFIG_LOGGER = "streamify.server.config"
_log = logging.getLogger(CONFIG_LOGGER)

Principals = tuple[PrincipalSettings, ...]
_Reader = Callable[[bytes], tuple[Principals, list[str]]]
_UNREADABLE = b"unreadable"


class LivePrincipals:
    """The principals in force: ``settings.principals`` until their file changes."""

    def __init__(self, settings: ServiceSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._principals = settings.principals
        self._interval = settings.reload_interval
        self._clock = clock
        self._next_look = clock() + self._interval
        self._seen: bytes | None = None  # SHA-256 of the version of the file last read
        self._lock = threading.Lock()
        self._path: Path | None
        self._read: _Reader
        if settings.principals_file is not None:
            self._path, self._read = settings.principals_file, self._principals_file
        else:
            self._path, self._read = settings.loaded_from, self._config_file
        self._settings = settings

    def current(self) -> Principals:
        """The principals in force, after a look at their file when one is due. Cheap: a
        clock read, except once an interval."""
        if self._path is None or self._clock() < self._next_look:
            return self._principals
        # One caller looks; the others (threads) go on with what is in force.
        if self._lock.acquire(blocking=False):
            try:
                self._next_look = self._clock() + self._interval
                self._look(self._path)
            finally:
                self._lock.release()
        return self._principals

    def _look(self, path: Path) -> None:
        try:
            content = path.read_bytes()
        except OSError as exc:
            if self._seen != _UNREADABLE:
                self._seen = _UNREADABLE
                self._refuse(path, f"the file cannot be read ({exc.strerror})")
            return
        digest = hashlib.sha256(content).digest()
        if digest == self._seen:
            return
        self._seen = digest
        try:
            principals, restart_only = self._read(content)
        except (OSError, ValueError) as exc:  # pydantic's and the parsers' errors included
            self._refuse(path, str(exc))
            return
        if restart_only:
            _log.warning("%s changes %s: only the principals are reloaded, the rest takes "
                         "effect on restart", path, ", ".join(restart_only))
        if principals != self._principals:
            _log.info("principals reloaded from %s: %s", path,
                      _changes(self._principals, principals))
            self._principals = principals

    def _refuse(self, path: Path, problem: str) -> None:
        _log.error("principals not reloaded from %s: %s; the %d principals loaded before "
                   "stay in force, and the file is read again every %g s", path, problem,
                   len(self._principals), self._interval)

    def _principals_file(self, content: bytes) -> tuple[Principals, list[str]]:
        assert self._settings.principals_file is not None
        return parse_principals(content, self._settings.principals_file), []

    def _config_file(self, _content: bytes) -> tuple[Principals, list[str]]:
        # The whole settings, as at start (variables over the file); the content read
        # above only tells that the file changed.
        assert self._settings.loaded_from is not None
        try:
            fresh = load_settings(self._settings.loaded_from)
        except ValidationError as exc:  # its text would quote the values
            raise ValueError(describe_invalid(exc)) from None
        running = self._settings
        restart_only = [name for name in type(running).model_fields
                        if name != "principals"
                        and getattr(fresh, name) != getattr(running, name)]
        return fresh.principals, restart_only


def _changes(before: Principals, after: Principals) -> str:
    """Which principals came, went or changed, by name (names are not secrets)."""
    old = {p.name: p for p in before}
    new = {p.name: p for p in after}
    parts = [f"{len(new)} in force"]
    for word, names in (("added", new.keys() - old.keys()), ("removed", old.keys() - new.keys()),
                        ("changed", {n for n in new.keys() & old.keys() if new[n] != old[n]})):
        if names:
            parts.append(f"{word} {', '.join(sorted(names))}")
    return "; ".join(parts)
