"""``streamify`` (the command) with the part bodies it holds at once counted: the most
parts in memory at any moment is written to the file ``$STREAMIFY_HELD_FILE`` names, so a
benchmark can set a run's peak RSS beside the memory its parts actually took.

A part's body is read first thing in ``PartSending._send`` and dropped when it returns
(also before a retry's wait), so the parts inside it are the bodies held; the count costs
one lock per part.

    STREAMIFY_HELD_FILE=held.txt python benchmarks/_held.py upload DIR s3://bucket/prefix/
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamify import _sending

__all__ = ["main"]


def main() -> None:
    lock = threading.Lock()
    count = {"now": 0, "peak": 0}
    original = _sending.PartSending._send

    def counted(self: _sending.PartSending, number: int, read: Callable[[], bytes]) -> Any:
        with lock:
            count["now"] += 1
            count["peak"] = max(count["peak"], count["now"])
        try:
            return original(self, number, read)
        finally:
            with lock:
                count["now"] -= 1

    _sending.PartSending._send = counted  # type: ignore[method-assign]
    where = os.environ.get("STREAMIFY_HELD_FILE")
    if where:
        atexit.register(lambda: Path(where).write_text(f"{count['peak']}\n"))
    from streamify.cli import main as command

    sys.argv = ["streamify", *sys.argv[1:]]
    command()


if __name__ == "__main__":
    main()
