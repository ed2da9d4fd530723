"""A ``put`` on ``streamify://``: which files go where, and their progress.

fsspec's own ``put`` names the files (globs, folders, trailing slashes, lists); the
filesystem runs them as one :class:`UploadBatch` and reports to the ``put``'s fsspec
``Callback`` as fsspec's ``put`` would: a branch per file, one step per file done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from glob import has_magic
from typing import Any

import fsspec
from fsspec.callbacks import Callback
from fsspec.spec import AbstractFileSystem
from fsspec.utils import other_paths

from . import _events as ev
from ._batch import BatchFile, FileOutcome
from ._engine import Uploader

__all__ = ["CallbackProgress", "PutPairs", "PutProgress", "is_folder", "put_pairs"]


def put_pairs(fs: AbstractFileSystem, lpath: str | list[str], rpath: str | list[str], *,
              recursive: bool, maxdepth: int | None) -> list[tuple[str, str]]:
    """(source, target) of every file a ``put`` on ``fs`` copies, named by fsspec's own
    ``put`` for local sources; a remote folder or glob is expanded by the source's
    filesystem and its targets named by ``other_paths``, as fsspec's ``put`` names them."""
    first = lpath if isinstance(lpath, str) else (lpath[0] if lpath else "")
    if not isinstance(lpath, str) or not is_remote(first):
        pairs = PutPairs()
        AbstractFileSystem.put(fs, lpath, rpath, recursive=recursive, callback=pairs,
                               maxdepth=maxdepth)
        return [(s, t) for s, t in pairs.pairs if not is_folder(s)]
    source_fs, path = fsspec.core.url_to_fs(lpath)
    lpaths = source_fs.expand_path(path, recursive=recursive, maxdepth=maxdepth)
    if not recursive or maxdepth is not None:
        lpaths = [p for p in lpaths if not source_fs.isdir(p)]  # as fsspec's put
    magic = has_magic(path)
    into_folder = (not magic and not lpath.endswith("/") and isinstance(rpath, str)
                   and (rpath.endswith("/") or fs.isdir(rpath)))
    rpaths = other_paths(lpaths, fs._strip_protocol(rpath),
                         exists=(magic and len(lpaths) == 1) or into_folder)
    return [(source_fs.unstrip_protocol(s), t) for s, t in zip(lpaths, rpaths, strict=True)
            if not source_fs.isdir(s)]


class CallbackProgress:
    """Feeds an fsspec ``Callback`` from the engine's events (sent by several workers)."""

    def __init__(self, callback: Any) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._sized = False

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started | ev.Progress):
            with self._lock:
                # An object already there has no Started: its one Progress sizes it.
                if not self._sized:
                    self._callback.set_size(event.total_bytes)
                    self._sized = True
                if isinstance(event, ev.Progress):
                    self._callback.absolute_update(event.bytes_done)


class PutPairs(Callback):  # type: ignore[misc]
    """The progress given to fsspec's own ``put`` to learn its files: every file's branch
    is this callback, and ``put_file`` given it records the (source, target) pair."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> PutPairs:
        return self


class PutProgress:
    """A ``put``'s fsspec ``Callback``: a branch per file while it runs, one step per
    file done; and the s3fs listings of each file written forgotten."""

    def __init__(self, callback: Any, targets: dict[BatchFile, str],
                 written: Callable[[str], None]) -> None:
        self._callback = callback
        self._targets = targets
        self._written = written
        self._lock = threading.Lock()
        self._branches: dict[BatchFile, Any] = {}

    def start(self, file: BatchFile, uploader: Uploader) -> None:
        branch = self._callback.branched(file.source, self._targets[file])
        uploader.subscribe(CallbackProgress(branch))
        with self._lock:
            self._branches[file] = branch

    def end(self, outcome: FileOutcome) -> None:
        self._written(self._targets[outcome.file])
        with self._lock:
            branch = self._branches.pop(outcome.file, None)
            if branch is not None:
                branch.close()
            if outcome.result is not None:
                self._callback.relative_update(1)


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def is_folder(location: str) -> bool:
    return not is_remote(location) and os.path.isdir(location.removeprefix("file://"))
