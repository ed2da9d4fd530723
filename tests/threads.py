"""Order threads by what they do, not by sleeping: start one and go on once it waits.

A thread that calls ``threading.Condition.wait`` (which ``Event.wait``, ``Future.result``
and every queue use underneath) has done what it could and is blocked until someone
notifies it: for a thread asking a signer for a URL or a memory budget for room, its
request is in. Starting threads one after the other this way makes them arrive in that
order, and a thread seen waiting is known not to have been let through, with no sleep
that a loaded machine could outlast.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["start_and_wait_until_it_waits"]

_CONDITION_WAIT = threading.Condition.wait.__code__


def start_and_wait_until_it_waits(target: Callable[[], object],
                                  timeout: float = 30.0) -> threading.Thread:
    """Start ``target`` in a daemon thread; return once that thread waits on a condition,
    or has ended (a call that had no reason to wait)."""
    waiting = threading.Event()

    def on_call(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is _CONDITION_WAIT:
            waiting.set()

    def run() -> None:
        sys.setprofile(on_call)
        try:
            target()
        finally:
            sys.setprofile(None)
            waiting.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not waiting.wait(timeout):
        raise AssertionError(f"the thread running {target} neither waited nor ended")
    return thread
