"""Keep the command's resident memory at what its uploads hold.

glibc's malloc gives threads arenas of their own (up to eight per core), and a part buffer
freed in one arena is not reused by an allocation in another, so a command with many file
and part threads keeps far more memory than it has in flight: uploading 50 files of 64 MiB
with the defaults (16 parts of 8 MiB in flight) peaked at 278 MiB with glibc's default,
195 MiB with two arenas, at the same CPU (``benchmarks/many_files.py``). Only the command's
own process is tuned this way: the library never changes malloc in a host process.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["limit_malloc_arenas"]

_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(count: int = 2) -> None:
    """Have glibc's malloc make at most ``count`` arenas (nothing elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_ARENA_MAX, count)
