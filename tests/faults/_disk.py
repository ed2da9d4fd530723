"""A small state directory that can fill up or turn read-only: a 64 KiB tmpfs mounted for
one test (the test process runs as root in CI), unmounted afterwards."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "remount", "tmpfs"]


@contextlib.contextmanager
def tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """``where``, made and mounted as a 64 KiB tmpfs with ``options`` (``ro``...); skipped,
    with the reason, where mounting is not allowed."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=64k", *options)),
                              "tmpfs", str(where)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"state directory on a small tmpfs: cannot mount one here "
                    f"({mounted.stderr.strip() or mounted.returncode}); run as root")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def fill(where: Path) -> None:
    """Write a file in ``where`` until its file system is full (ENOSPC)."""
    with contextlib.suppress(OSError), open(where / "filler", "wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


def remount(where: Path, mode: str) -> None:
    """Remount the tmpfs at ``where`` ``"ro"`` (EROFS for every write from now on) or
    ``"rw"`` again."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True,
                   capture_output=True)
