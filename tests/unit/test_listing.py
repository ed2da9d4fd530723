"""The object listing's cursors and cost (``streamify.server._listing``), without servers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamify.server._listing import (
    MAX_PAGE,
    CursorRejected,
    decode_cursor,
    encode_cursor,
    listing_cost,
)

# Keys as S3 allows them: 1 to 1,024 bytes of UTF-8.
KEYS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=256).filter(
    lambda key: len(key.encode()) <= 1024)


@given(KEYS)
def test_a_cursor_gives_back_the_key_it_was_made_from(key: str) -> None:
    cursor = encode_cursor(key)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789-_")
    assert decode_cursor(cursor) == key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["", "%%%", "A", _b64(b"\xff\xfe"), _b64(b"k" * 1025),
                                    "x" * 5000])
def test_a_cursor_the_service_did_not_make_is_rejected(cursor: str) -> None:
    with pytest.raises(CursorRejected, match="next_cursor of the previous page"):
        decode_cursor(cursor)


def test_a_listing_costs_one_and_one_per_100_keys_it_may_read() -> None:
    assert [listing_cost(n) for n in (1, 50, 100, 101, MAX_PAGE)] == [2, 2, 2, 3, 11]
    for outside in (0, MAX_PAGE + 1):
        with pytest.raises(ValueError, match="within"):
            listing_cost(outside)
