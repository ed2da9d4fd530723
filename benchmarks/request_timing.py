"""Which requests a ``streamify`` command makes, and how long each kind takes.

Runs the command in this process with every S3 call (botocore), part PUT (the presigned
data path) and resume-state operation timed, then prints one markdown row per kind:
count, median and p90 milliseconds, total seconds (summed over the threads, so the totals
can exceed the wall time).

    source /tmp/rgw.env
    flock /tmp/streamify-heavy.lock python benchmarks/request_timing.py upload \\
        --endpoint-url "$S3_ENDPOINT_URL" --no-progress DIR s3://bucket/prefix/
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["main"]

_calls: dict[str, list[float]] = defaultdict(list)
_lock = threading.Lock()


def _timed(name_of: Callable[[tuple[Any, ...]], str],
           original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with _lock:
                _calls[name_of(args)].append(elapsed)
    return wrapper


def _instrument() -> None:
    import botocore.client
    import streamify._state as state
    import streamify._transport as transport

    client: Any = botocore.client.BaseClient
    client._make_api_call = _timed(lambda args: str(args[1]), client._make_api_call)
    sender: Any = transport.PartSender
    sender.put = _timed(lambda args: "part PUT (presigned)", sender.put)
    store: Any = state.StateStore
    for name in ("ensure_writable", "load", "save", "remove"):
        setattr(store, name, _timed(_named(f"state {name}"), getattr(store, name)))


def _named(name: str) -> Callable[[tuple[Any, ...]], str]:
    return lambda args: name


def table(wall: float) -> str:
    rows = [f"wall {wall:.2f} s", "", "| call | count | median ms | p90 ms | total s |",
            "|---|---:|---:|---:|---:|"]
    for name, times in sorted(_calls.items(), key=lambda item: -sum(item[1])):
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
        rows.append(f"| {name} | {len(times)} | {statistics.median(times) * 1000:.1f} | "
                    f"{p90 * 1000:.1f} | {sum(times):.2f} |")
    return "\n".join(rows)


def main() -> None:
    _instrument()
    from streamify.cli import main as streamify_main

    started = time.perf_counter()
    try:
        streamify_main(sys.argv[1:])
    finally:
        print(table(time.perf_counter() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
