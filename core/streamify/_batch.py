"""Uploading many files at once: one memory budget, one connection pool, first come first
served, pause or cancel of all, and what happened to each file.

Every front end that uploads several files runs them here (``streamify upload DIR``,
``streamify resume``, the fsspec filesystem's ``put``), so they share one behaviour:

- every file of a batch shares one ``PartSender`` (one pool of HTTP connections, one
  bandwidth limit), and each control plane's destinations are listed once where that is
  cheaper than a HEAD per file (``take_snapshot``);
- the files in progress share the memory of ``jobs x concurrency`` parts
  (``MemoryBudget``): ``jobs`` files of many parts at a time, or up to ``concurrency``
  times as many that fit in one part, taken in the order the files come;
- ``pause()`` and ``cancel()`` act on every file (from any thread, a signal handler too);
  a ``KeyboardInterrupt`` while waiting pauses them all, lets the parts in flight finish
  and is raised again, so a repeat of the same batch resumes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ._config import UploadConfig
from ._control import ControlPlane, SignedPart
from ._destination import Destination
from ._engine import Uploader
from ._errors import StreamifyError
from ._plan import plan_parts
from ._result import UploadResult
from ._snapshot import PrefixSnapshot, take_snapshot
from ._state import StateStore
from ._throttle import Throttle
from ._transport import PartSender

__all__ = ["BatchFile", "BatchOutcome", "FileOutcome", "MemoryBudget", "UploadBatch"]


@dataclass(frozen=True, eq=False)
class BatchFile:
    """One file of a batch: where it comes from, where it goes, and how (each one is
    itself: two files of a batch are never equal)."""

    source: str
    destination: Destination
    control: ControlPlane
    config: UploadConfig
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file: its result, or the error it failed with."""

    file: BatchFile
    result: UploadResult | None = None
    error: Exception | None = None


@dataclass
class BatchOutcome:
    """What a batch did: one outcome per file that ran, in the order they ended."""

    files: int
    outcomes: list[FileOutcome] = field(default_factory=list)
    stopped: bool = False

    @property
    def failures(self) -> list[FileOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    def raise_failures(self, repeat: str) -> None:
        """Raise the error of a batch of one file that failed, or one error counting the
        failures of a larger batch (its cause the first failure); ``repeat`` says how to
        resume them ("rerun the same command")."""
        failures = self.failures
        if not failures:
            return
        first = failures[0]
        assert first.error is not None
        if self.files == 1:
            raise first.error
        raise StreamifyError(f"{len(failures)} of {self.files} files failed (first, "
                             f"{first.file.source}: {first.error}); {repeat} to resume "
                             "them") from first.error


class MemoryBudget:
    """The parts the files in progress may hold in memory at once, shared in turn.

    A file holds as many as it can have parts in flight (its part count, at most its
    concurrency): a file of one part holds one, so small files run ``concurrency`` times
    as many at once as large ones in the same memory. Files get theirs in the order they
    ask, so a large file is never passed over by the small ones behind it.
    """

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self._free = parts
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, parts: int) -> Iterator[None]:
        """Hold ``parts`` (at most all of them) for the ``with`` block."""
        taken = self.take(parts)
        try:
            yield
        finally:
            self.give_back(taken)

    def take(self, parts: int) -> int:
        """Wait for this caller's turn and ``parts`` free (at most all of them); return
        how many were taken, for ``give_back``."""
        parts = min(parts, self.parts)
        turn = object()
        with self._changed:
            self._turns.append(turn)
            while self._turns[0] is not turn or self._free < parts:
                self._changed.wait()
            self._turns.popleft()
            self._free -= parts
            self._changed.notify_all()
        return parts

    def give_back(self, parts: int) -> None:
        with self._changed:
            self._free += parts
            self._changed.notify_all()


class _SharedSender(PartSender):
    """The batch's one ``PartSender``, counting the parts on the wire."""

    def __init__(self, *, pool_size: int, config: UploadConfig) -> None:
        super().__init__(pool_size=pool_size, connect_timeout=config.connect_timeout,
                         read_timeout=config.read_timeout,
                         throttle=Throttle(config.bwlimit) if config.bwlimit else None)
        self._count_lock = threading.Lock()
        self.in_flight = 0

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        with self._count_lock:
            self.in_flight += 1
        try:
            return super().put(signed, body, on_progress)
        finally:
            with self._count_lock:
                self.in_flight -= 1


def _parts_in_flight(file: BatchFile) -> int:
    """How many parts of ``file`` can be in memory at once: its part count, at most its
    concurrency (the concurrency where its size is unknown: a URL)."""
    try:
        size = os.stat(file.source).st_size
    except OSError:
        return file.config.concurrency
    if size <= file.config.part_size:
        return 1  # one part, whatever the plan (no plan made for each small file)
    return min(file.config.concurrency, plan_parts(size, file.config.part_size).count)


class UploadBatch:
    """Uploads files in the memory of ``jobs x concurrency`` parts, over one pool.

    ``config`` sets what the files share: the connection pool's timeouts and the bandwidth
    limit, which holds for the whole batch. ``on_start(file, uploader)`` is called before
    each file's upload runs (subscribe to its events there) and ``on_end(outcome)`` after
    it, both on the file's own thread. One batch runs once.
    """

    def __init__(self, *, state: StateStore, config: UploadConfig, jobs: int,
                 on_start: Callable[[BatchFile, Uploader], None] | None = None,
                 on_end: Callable[[FileOutcome], None] | None = None) -> None:
        self._state = state
        self._on_start = on_start
        self._on_end = on_end
        self._sender = _SharedSender(pool_size=jobs * config.concurrency, config=config)
        self._budget = MemoryBudget(jobs * config.concurrency)
        self._lock = threading.Lock()
        self._running: set[Uploader] = set()
        self._stopped: Literal["pause", "cancel"] | None = None
        self._snapshots: dict[int, PrefixSnapshot] = {}

    @property
    def parts_in_flight(self) -> int:
        """Parts on the wire now (a pause lets them finish)."""
        return self._sender.in_flight

    def run(self, files: Sequence[BatchFile]) -> BatchOutcome:
        """Upload every file; a file that fails does not stop the others."""
        outcome = BatchOutcome(len(files))
        try:
            self._list_destinations(files)
            self._run_all(files, outcome)
        finally:
            self._sender.close()
        outcome.stopped = self._stopped is not None
        return outcome

    def pause(self) -> None:
        """Stop every file after its parts in flight, and start no other; the uploads
        stay open and a repeat of the batch resumes them."""
        self._stop("pause")

    def cancel(self) -> None:
        """Stop every file and abort its multipart upload; start no other."""
        self._stop("cancel")

    def _stop(self, how: Literal["pause", "cancel"]) -> None:
        with self._lock:
            self._stopped = self._stopped or how
            running = list(self._running)
        for uploader in running:
            if how == "pause":
                uploader.pause()
            else:
                uploader.cancel()

    def _run_all(self, files: Sequence[BatchFile], outcome: BatchOutcome) -> None:
        """Give each file its memory in the order of ``files`` (first come, first
        served), then a thread: each of a fixed set of threads takes the next file,
        waits for its memory, uploads it, and takes the next (no task or future per
        file: a directory of small files costs this loop little)."""
        if not files:
            return
        queue = iter(files)
        turn = threading.Lock()  # one thread at a time takes a file and its memory
        faults: list[BaseException] = []

        def work() -> None:
            try:
                while True:
                    with turn:
                        file = None if self._stopped is not None else next(queue, None)
                        if file is None:
                            return
                        parts = self._budget.take(_parts_in_flight(file))
                    if self._stopped is not None:
                        self._budget.give_back(parts)
                        return
                    self._run_one(file, parts, outcome)
            except BaseException as fault:  # a fault of the batch itself, not of a file
                faults.append(fault)
                self.pause()

        threads = [threading.Thread(target=work, name=f"streamify-file-{n}", daemon=True)
                   for n in range(min(len(files), self._budget.parts))]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)  # in steps: the main thread still gets Ctrl-C
        except BaseException:
            # Ctrl-C: finish the parts in flight, start nothing new; a repeat resumes.
            self.pause()
            for thread in threads:
                thread.join()
            raise
        if faults:
            raise faults[0]

    def _list_destinations(self, files: Sequence[BatchFile]) -> None:
        """List each control plane's destinations once, where that is cheaper than a HEAD
        per file (``take_snapshot``): files that skip an identical object need to know
        what is there."""
        by_control: dict[int, list[BatchFile]] = {}
        for file in files:
            if file.config.if_exists == "skip_identical":
                by_control.setdefault(id(file.control), []).append(file)
        for same in by_control.values():
            snapshot = take_snapshot(same[0].control, [file.destination for file in same])
            if snapshot is not None:
                self._snapshots[id(same[0].control)] = snapshot

    def _run_one(self, file: BatchFile, parts: int, outcome: BatchOutcome) -> None:
        """Upload ``file`` in the ``parts`` of memory it was given, then give them back."""
        try:
            result = None if self._stopped is not None else self._upload(file)
        except Exception as exc:  # one file's failure is reported, the others go on
            ended = FileOutcome(file, error=exc)
        else:
            if result is None:
                return
            ended = FileOutcome(file, result=result)
        finally:
            self._budget.give_back(parts)
        with self._lock:
            outcome.outcomes.append(ended)
        if self._on_end is not None:
            self._on_end(ended)

    def _upload(self, file: BatchFile) -> UploadResult | None:
        with Uploader(file.source, file.destination, control=file.control,
                      config=file.config, state=self._state, sender=self._sender,
                      metadata=file.metadata,
                      snapshot=self._snapshots.get(id(file.control))) as uploader:
            if self._on_start is not None:
                self._on_start(file, uploader)
            with self._lock:
                if self._stopped is not None:
                    return None  # stopped while this file was opening
                self._running.add(uploader)
            try:
                return uploader.run()
            finally:
                with self._lock:
                    self._running.discard(uploader)
