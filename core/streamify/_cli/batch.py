"""Uploading the files of one command: several at once over one connection pool, and Ctrl-C.

Every file of a command shares one ``PartSender`` (one pool of HTTP connections, one
bandwidth limit) and one control plane per endpoint. The files in progress share the
memory of ``jobs x concurrency`` parts: ``jobs`` files of many parts at a time, or up to
``concurrency`` times as many that fit in one part (``MemoryBudget``).

The first Ctrl-C pauses every upload (the parts in flight finish, so nothing sent is
wasted) and says so; a second one exits at once. Either way the resume state and the open
multipart upload stay, and rerunning the same command resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import click
from tqdm import tqdm

from .._config import UploadConfig
from .._control import ControlPlane, SignedPart
from .._destination import Destination
from .._engine import Uploader, UploadResult
from .._errors import StreamifyError
from .._plan import plan_parts
from .._snapshot import PrefixSnapshot, take_snapshot
from .._state import StateStore
from .._throttle import Throttle
from .._transport import PartSender
from .malloc import limit_malloc_arenas
from .progress import ProgressDisplay, notice
from .results import result_line

__all__ = ["Job", "UploadBatch"]

INTERRUPTED_EXIT = 130


@dataclass(frozen=True)
class Job:
    """One file of the command and where it goes."""

    source: str
    destination: Destination
    control: ControlPlane
    config: UploadConfig


class _SharedSender(PartSender):
    """The batch's one ``PartSender``: counts the parts on the wire, and stays open when
    an uploader that borrowed it closes (the batch closes it at the end)."""

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

    def close(self) -> None:
        """Uploaders close what they were given: the batch's pool outlives each of them."""

    def shutdown(self) -> None:
        super().close()


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
        parts = min(parts, self.parts)
        turn = object()
        with self._changed:
            self._turns.append(turn)
            while self._turns[0] is not turn or self._free < parts:
                self._changed.wait()
            self._turns.popleft()
            self._free -= parts
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._free += parts
                self._changed.notify_all()


def _parts_in_flight(job: Job) -> int:
    """How many parts of ``job`` can be in memory at once: its part count, at most its
    concurrency (the concurrency where its size is unknown: a URL)."""
    try:
        size = os.stat(job.source).st_size
    except OSError:
        return job.config.concurrency
    return min(job.config.concurrency, plan_parts(size, job.config.part_size).count)


class UploadBatch:
    """Runs the jobs of one command in the memory of ``jobs x concurrency`` parts.

    ``config`` sets what the files share: the connection pool's timeouts and the bandwidth
    limit, which holds for the whole command.
    """

    def __init__(self, *, state: StateStore, config: UploadConfig, jobs: int, bar: bool,
                 as_json: bool) -> None:
        self._state = state
        self._jobs = jobs
        self._bar = bar
        self._as_json = as_json
        self._sender = _SharedSender(pool_size=jobs * config.concurrency, config=config)
        self._lock = threading.Lock()
        self._running: set[Uploader] = set()
        self._interrupted = False
        self._failures = 0
        self._snapshots: dict[int, PrefixSnapshot] = {}
        self._budget = MemoryBudget(jobs * config.concurrency)

    def run(self, jobs: list[Job]) -> None:
        """Upload every job; raise if one failed (after the others) or on Ctrl-C."""
        limit_malloc_arenas()  # before the first thread: freed parts are reused, not kept
        try:
            with self._ctrl_c():
                self._list_destinations(jobs)
                if len(jobs) == 1:
                    self._run_one(jobs[0], alone=True)
                else:
                    with ThreadPoolExecutor(min(len(jobs), self._budget.parts),
                                            thread_name_prefix="streamify-file") as pool:
                        for future in [pool.submit(self._run_one, job, alone=False)
                                       for job in jobs]:
                            future.result()
        finally:
            self._sender.shutdown()
        if self._interrupted:
            raise click.exceptions.Abort
        if self._failures:
            raise StreamifyError(f"{self._failures} of {len(jobs)} files failed; rerun the "
                                 "same command to resume them")

    def _list_destinations(self, jobs: list[Job]) -> None:
        """List each control plane's destinations once, where that is cheaper than a HEAD
        per file (``take_snapshot``): files that skip an identical object need to know
        what is there."""
        by_control: dict[int, list[Job]] = {}
        for job in jobs:
            if job.config.if_exists == "skip_identical":
                by_control.setdefault(id(job.control), []).append(job)
        for same in by_control.values():
            snapshot = take_snapshot(same[0].control, [job.destination for job in same])
            if snapshot is not None:
                self._snapshots[id(same[0].control)] = snapshot

    def _run_one(self, job: Job, *, alone: bool) -> None:
        if self._interrupted:
            return
        try:
            with self._budget.hold(_parts_in_flight(job)):
                if self._interrupted:
                    return
                result = self._upload(job, alone=alone)
        except StreamifyError as exc:
            if alone:
                raise
            with self._lock:
                self._failures += 1
            notice(f"streamify: error: {exc}")
            return
        line = result_line(result, job.source, as_json=self._as_json)
        if self._bar:
            tqdm.write(line, file=sys.stdout)  # above the bars being drawn
        else:
            sys.stdout.write(f"{line}\n")  # one write: lines of several files never mix

    def _upload(self, job: Job, *, alone: bool) -> UploadResult:
        uploader = Uploader(job.source, job.destination, control=job.control,
                            config=job.config, state=self._state, sender=self._sender,
                            snapshot=self._snapshots.get(id(job.control)))
        try:
            label = os.path.basename(job.source.rstrip("/")) or job.source
            uploader.subscribe(ProgressDisplay(label, bar=self._bar, leave=alone))
            with self._lock:
                self._running.add(uploader)
            return uploader.run()
        finally:
            with self._lock:
                self._running.discard(uploader)
            uploader.close()

    # ------------------------------------------------------------------ Ctrl-C
    @contextmanager
    def _ctrl_c(self) -> Iterator[None]:
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
        parts = self._sender.in_flight
        doing = (f"finishing the {parts} part{'' if parts == 1 else 's'} in flight so no "
                 "byte sent is wasted" if parts else "stopping before the next part")
        notice(f"streamify: {doing}; press Ctrl-C again to stop now")
        with self._lock:
            running = list(self._running)
        for uploader in running:
            uploader.pause()
