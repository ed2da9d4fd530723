"""Listing cursors: where the next page of a principal's completed objects starts. No I/O.

A listing is in key order, the order S3 lists in, so a page costs one ListObjectsV2 call of
at most 1,000 keys, whatever the prefix holds. A page's cursor is its last key: the next
page starts after it (``StartAfter``), so objects written or deleted between two pages
never make a later page repeat or skip one that was there all along.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["KEYS_PER_TOKEN", "MAX_PAGE", "CursorRejected", "decode_cursor", "encode_cursor",
           "listing_cost"]

MAX_PAGE = 1000
"""Most objects in a page: one ListObjectsV2 call's worth."""

KEYS_PER_TOKEN = 100
"""A listing costs one rate-limit token, and one more per this many keys it may read."""


class CursorRejected(ValueError):
    """A cursor is not one this service handed out; ``str()`` says what to do."""


def encode_cursor(last_key: str) -> str:
    """The cursor of the page that starts right after ``last_key``."""
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


_KEY_MAX_BYTES = 1024


def decode_cursor(cursor: str) -> str:
    """The key after which the page ``cursor`` starts."""
    try:
        if len(cursor) > 4 * _KEY_MAX_BYTES // 3 + 3:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw or len(raw) > _KEY_MAX_BYTES:
            raise ValueError
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise CursorRejected("cursor is not one this service handed out: pass the "
                             "next_cursor of the previous page unchanged, or none for the "
                             "first page") from exc


def listing_cost(limit: int) -> int:
    """Rate-limit tokens of a listing page of at most ``limit`` keys."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit {limit} must be within 1..{MAX_PAGE}")
    return 1 + -(-limit // KEYS_PER_TOKEN)
