"""``newest_first``: one page of a principal's completed objects, newest first. No I/O.

S3 lists keys in key order only, so the service reads every key under the prefix and keeps
the newest ``limit`` (memory stays bounded by ``limit``, whatever the prefix holds). The
order is total: newest first, then by key, so a page's last object is a cursor that says
exactly where the next page starts. Objects written after the first page was read sort
before the cursor, so they never shift a later page; they show on the next first page.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CursorRejected", "StoredObject", "decode_cursor", "encode_cursor", "newest_first"]


class CursorRejected(ValueError):
    """A cursor is not one this service handed out; ``str()`` says what to do."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A completed object as the listing shows it."""

    key: str
    size: int
    etag: str
    last_modified: float
    """Seconds since the epoch."""

    @property
    def order(self) -> tuple[float, str]:
        """Newest first, then by key."""
        return (-self.last_modified, self.key)


def encode_cursor(last: StoredObject) -> str:
    """The cursor of the page that starts right after ``last``."""
    text = json.dumps([last.last_modified, last.key], ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_CURSOR_MAX = 4096
"""Characters: a key is at most 1,024 bytes, so a cursor this service made is shorter."""


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``order`` of the last object before the page ``cursor`` starts."""
    try:
        if len(cursor) > _CURSOR_MAX:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, key = json.loads(raw.decode())
        if isinstance(when, bool) or not isinstance(when, int | float) \
                or not isinstance(key, str):
            raise TypeError
        return (-float(when), key)
    # OverflowError: an integer too large for a float; RecursionError: nesting too deep.
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, OverflowError,
            RecursionError) as exc:
        raise CursorRejected("cursor is not one this service handed out: pass the "
                             "next_cursor of the previous page unchanged, or none for the "
                             "first page") from exc


def newest_first(objects: Iterable[StoredObject], *, limit: int,
                 after: tuple[float, str] | None = None
                 ) -> tuple[list[StoredObject], str | None]:
    """The ``limit`` newest of ``objects`` that sort after ``after``, and the cursor of the
    next page (``None`` when this page holds the last of them)."""
    if limit < 1:
        raise ValueError(f"limit {limit} must be at least 1")
    candidates = (o for o in objects if after is None or o.order > after)
    # One more than asked, to know whether another page follows.
    page = heapq.nsmallest(limit + 1, candidates, key=lambda o: o.order)
    if len(page) <= limit:
        return page, None
    return page[:limit], encode_cursor(page[limit - 1])
