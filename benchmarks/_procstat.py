"""The processes running on this machine, read from ``/proc/PID/stat``: each one's name,
parent and CPU time so far (user + system, every thread included)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessStat", "processes"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    name: str
    parent: int
    cpu: float
    """CPU seconds (user + system) used so far."""


def processes() -> Iterator[ProcessStat]:
    """Every process readable now (one that ends meanwhile is left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        yield ProcessStat(int(entry.name), stat[stat.index("(") + 1 : stat.rindex(")")],
                          int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
