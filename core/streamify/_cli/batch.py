"""The files of one command on the core's ``UploadBatch``: bars, result lines and Ctrl-C.

The batch (``streamify._batch``) shares the memory, the connection pool and the listing
of the destinations; this module shows each file's progress and result and turns Ctrl-C
and failures into the command's exit.

The first Ctrl-C pauses every upload (the parts in flight finish, so nothing sent is
wasted) and says so; a second one exits at once. Either way the resume state and the open
multipart upload stay, and rerunning the same command resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

import click
from tqdm import tqdm

from .._batch import BatchFile, FileOutcome, UploadBatch
from .._config import UploadConfig
from .._engine import Uploader
from .._state import StateStore
from .malloc import limit_malloc_arenas
from .progress import ProgressDisplay, notice
from .results import result_line

__all__ = ["run_batch"]

INTERRUPTED_EXIT = 130


class _CommandBatch:
    """What the command shows of a batch, and what Ctrl-C does to it."""

    def __init__(self, files: Sequence[BatchFile], *, state: StateStore,
                 config: UploadConfig, jobs: int, bar: bool, as_json: bool) -> None:
        self._alone = len(files) == 1
        self._bar = bar
        self._as_json = as_json
        self._interrupted = False
        self.batch = UploadBatch(state=state, config=config, jobs=jobs,
                                 on_start=self._show_progress, on_end=self._show_outcome)

    def _show_progress(self, file: BatchFile, uploader: Uploader) -> None:
        label = os.path.basename(file.source.rstrip("/")) or file.source
        uploader.subscribe(ProgressDisplay(label, bar=self._bar, leave=self._alone))

    def _show_outcome(self, outcome: FileOutcome) -> None:
        if outcome.result is None:
            if not self._alone:  # a file alone: its error is the command's
                notice(f"streamify: error: {outcome.error}")
            return
        line = result_line(outcome.result, outcome.file.source, as_json=self._as_json)
        if self._bar:
            tqdm.write(line, file=sys.stdout)  # above the bars being drawn
        else:
            sys.stdout.write(f"{line}\n")  # one write: lines of several files never mix

    @contextmanager
    def ctrl_c(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread receives signals
            return
        previous = signal.signal(signal.SIGINT, self._on_ctrl_c)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        if self._interrupted:
            notice("streamify: stopped now; the upload stays open: rerun the same command "
                   "to resume")
            sys.stdout.flush()
            sys.stderr.flush()
            # At once, as asked: no part, thread or cleanup is waited for. Resume states
            # are replaced atomically, so each is the old one or the new one, never half.
            os._exit(INTERRUPTED_EXIT)
        self._interrupted = True
        parts = self.batch.parts_in_flight
        doing = (f"finishing the {parts} part{'' if parts == 1 else 's'} in flight so no "
                 "byte sent is wasted" if parts else "stopping before the next part")
        notice(f"streamify: {doing}; press Ctrl-C again to stop now")
        self.batch.pause()


def run_batch(files: Sequence[BatchFile], *, state: StateStore, config: UploadConfig,
              jobs: int, bar: bool, as_json: bool) -> None:
    """Upload ``files`` in the memory of ``jobs x concurrency`` parts, a line per file;
    raise if one failed (after the others) or on Ctrl-C."""
    limit_malloc_arenas()  # before the first thread: freed parts are reused, not kept
    command = _CommandBatch(files, state=state, config=config, jobs=jobs, bar=bar,
                            as_json=as_json)
    with command.ctrl_c():
        outcome = command.batch.run(files)
    if outcome.stopped:
        raise click.exceptions.Abort
    outcome.raise_failures("rerun the same command")
