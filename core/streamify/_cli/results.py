"""The line ``streamify upload`` prints for each file: a sentence, or JSON for scripts."""

from __future__ import annotations

import json

from .._engine import UploadResult
from .._units import format_size
from .progress import MiB

__all__ = ["result_line"]


def result_line(result: UploadResult, source: str, *, as_json: bool) -> str:
    """What happened to ``source``; rates in MiB/s, like the progress bar."""
    if as_json:
        return json.dumps({
            "source": source, "destination": result.destination.url, "status": result.status,
            "upload_id": result.upload_id, "size": result.size, "etag": result.etag,
            "parts": result.parts, "bytes_sent": result.bytes_sent,
            "bytes_resumed": result.bytes_resumed, "resumed": result.resumed,
            "restarted": result.restarted, "skipped": result.skipped,
            "seconds": round(result.seconds, 3),
        })
    parts = "1 part" if result.parts == 1 else f"{result.parts} parts"
    if result.skipped:
        return (f"already there: {source} -> {result.destination} ({format_size(result.size)}, "
                f"{parts}; the object is identical, nothing sent)")
    rate = result.bytes_sent / result.seconds / MiB if result.seconds > 0 else 0.0
    resumed = (f", {format_size(result.bytes_resumed)} were already there"
               if result.resumed else "")
    return (f"{result.status}: {source} -> {result.destination} ({format_size(result.size)}, "
            f"{parts}; sent {format_size(result.bytes_sent)} at {rate:.1f} MiB/s{resumed})")
