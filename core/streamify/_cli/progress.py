"""What a person at a terminal sees while an upload runs: a bar and one-line notices.

The bar is drawn only for a terminal (a log file or a pipe gets the summary line alone),
and counts in MiB and MiB/s, the unit the summary line uses too.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from tqdm import tqdm

from .. import _events as ev
from .._units import format_size

__all__ = ["MiB", "ProgressDisplay", "notice", "wants_bar"]

MiB = 1024 * 1024
_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} MiB "
           "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]")


def wants_bar(*, no_progress: bool, as_json: bool, stream: TextIO | None = None) -> bool:
    """A bar only for a person: not with ``--no-progress`` or ``--json``, not into a file."""
    stream = stream or sys.stderr
    return not (no_progress or as_json) and stream.isatty()


def notice(text: str) -> None:
    """One line on stderr that does not tear the bars being drawn."""
    tqdm.write(text, file=sys.stderr)


class ProgressDisplay:
    """An engine subscriber for one upload: notices for resume and restart, and a bar.

    The bar starts from the bytes already in S3, so its rate and ETA count only what this
    run sends. Several displays may draw at once (one per file of ``upload --jobs``).
    """

    def __init__(self, label: str, *, bar: bool, leave: bool = True) -> None:
        self._label = label
        self._enabled = bar
        self._leave = leave
        self._bar: tqdm[Any] | None = None
        self._checking: tqdm[Any] | None = None
        self._lock = threading.Lock()  # events arrive from every worker thread

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            self._show(event)

    def _show(self, event: ev.Event) -> None:
        if isinstance(event, ev.Resumed):
            parts = "part" if event.parts_present == 1 else "parts"
            notice(f"resuming upload {event.upload_id}: {format_size(event.bytes_present)} "
                   f"({event.parts_present} {parts}) already in S3, verified")
        elif isinstance(event, ev.Restarted):
            notice(f"upload {event.old_upload_id} was gone ({event.reason}); started afresh")
        elif isinstance(event, ev.Verifying) and self._enabled:
            if self._checking is None:
                self._checking = self._new_bar(f"{self._label} (checking what S3 holds)",
                                               event.total_bytes, 0, leave=False)
            self._checking.update(event.bytes_checked / MiB - self._checking.n)
        elif isinstance(event, ev.Progress) and self._enabled:
            self._close_checking()
            if self._bar is None:
                self._bar = self._new_bar(self._label, event.total_bytes, event.bytes_done,
                                          leave=self._leave)
            self._bar.update(event.bytes_done / MiB - self._bar.n)
        elif isinstance(event, ev.Retrying) and self._bar is not None:
            self._bar.set_postfix_str(f"retry {event.what}: {event.reason[:60]}")
        elif isinstance(event, ev.Completed) and self._bar is not None:
            self._bar.update(_bar_total(event.size) - self._bar.n)  # an empty file too
            self._bar.close()
        elif isinstance(event, ev.Failed | ev.Paused):
            self._close_checking()
            if self._bar is not None:
                self._bar.close()

    def _close_checking(self) -> None:
        if self._checking is not None:
            self._checking.close()
            self._checking = None

    @staticmethod
    def _new_bar(label: str, total_bytes: int, done_bytes: int, *, leave: bool) -> tqdm[Any]:
        return tqdm(total=_bar_total(total_bytes), initial=done_bytes / MiB, unit=" MiB",
                    bar_format=_FORMAT, desc=label, file=sys.stderr, dynamic_ncols=True,
                    leave=leave)


def _bar_total(total_bytes: int) -> float:
    """In MiB. An empty file still gets a bar that ends full: one byte's worth."""
    return max(total_bytes, 1) / MiB
