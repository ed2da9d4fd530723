"""The object listing's order and cursors (``streamify.server._listing``), without servers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamify.server._listing import (
    CursorRejected,
    StoredObject,
    decode_cursor,
    encode_cursor,
    newest_first,
)

KEYS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
# Few distinct times, so that ties (ordered by key) are common.
TIMES = st.sampled_from([0.0, 1.0, 1.5, 1_700_000_000.25, 1_700_000_000.0])
OBJECTS = st.dictionaries(KEYS, TIMES, max_size=40).map(
    lambda found: [StoredObject(key=k, size=len(k), etag="e", last_modified=t)
                   for k, t in found.items()])


@given(OBJECTS, st.integers(min_value=1, max_value=50))
def test_pages_followed_by_their_cursors_list_every_object_once_newest_first(
        objects: list[StoredObject], limit: int) -> None:
    listed: list[StoredObject] = []
    after = None
    for _ in range(len(objects) + 1):
        page, cursor = newest_first(objects, limit=limit, after=after)
        assert len(page) <= limit
        listed += page
        if cursor is None:
            break
        assert len(page) == limit
        after = decode_cursor(cursor)
    assert listed == sorted(objects, key=lambda o: (-o.last_modified, o.key))


@given(OBJECTS)
def test_a_cursor_gives_back_the_place_of_the_object_it_was_made_from(
        objects: list[StoredObject]) -> None:
    for stored in objects:
        assert decode_cursor(encode_cursor(stored)) == stored.order


def test_newer_objects_never_shift_a_later_page() -> None:
    old = [StoredObject(key=f"k{n}", size=0, etag="e", last_modified=float(n))
           for n in range(6)]
    first, cursor = newest_first(old, limit=3)
    assert [o.key for o in first] == ["k5", "k4", "k3"] and cursor
    newer = [*old, StoredObject(key="new", size=0, etag="e", last_modified=99.0)]
    second, last = newest_first(newer, limit=3, after=decode_cursor(cursor))
    assert ([o.key for o in second], last) == (["k2", "k1", "k0"], None)


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IGpzb24", "WzEsIDJd", "WyJ4IiwgImsiXQ",
                                    "W3RydWUsICJrIl0", "eyJhIjogMX0"])
def test_a_cursor_the_service_did_not_make_is_rejected(cursor: str) -> None:
    with pytest.raises(CursorRejected, match="next_cursor of the previous page"):
        decode_cursor(cursor)


def test_a_page_holds_at_least_one_object() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        newest_first([], limit=0)
