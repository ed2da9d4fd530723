"""``GET /v1/objects`` without ``key`` (a principal's completed objects, in key order, in
pages of one S3 read each) and ``GET /v1/limits``, through a real uvicorn in front of moto."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest
from streamify._plan import MAX_OBJECT_SIZE, MAX_PARTS

from tests.server._support import assert_problem
from tests.server.conftest import TOKENS, Api, GiB

# moto stamps objects to the second: writes this far apart have distinct, ordered times.
TICK = 1.1


def _store(api: Api, key: str, body: bytes) -> None:
    api.bucket.client.put_object(Bucket=api.bucket.name, Key=key, Body=body)


def _listing(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/objects", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _keys(answer: dict[str, Any]) -> list[str]:
    return [item["key"] for item in answer["objects"]]


def test_the_listing_is_the_callers_completed_objects_in_key_order(api: Api) -> None:
    # Written in an order that is neither the keys' order nor its reverse.
    for name in ("b.mp4", "c.mp4", "a/deep.mp4"):
        _store(api, api.key("alice", name), name.encode() * 100)
        time.sleep(TICK)
    open_upload = api.bucket.client.create_multipart_upload(
        Bucket=api.bucket.name, Key=api.key("alice", "unfinished.mp4"))
    assert open_upload["UploadId"]
    client = api.client("alice")

    answer = _listing(client)

    assert _keys(answer) == ["users/alice/a/deep.mp4", "users/alice/b.mp4",
                             "users/alice/c.mp4"]
    assert answer["next_cursor"] is None
    newest = answer["objects"][0]
    body = b"a/deep.mp4" * 100
    assert newest == {"key": "users/alice/a/deep.mp4", "bucket": api.bucket.name,
                      "size": len(body), "etag": hashlib.md5(body).hexdigest(),
                      "last_modified": newest["last_modified"]}
    times = [item["last_modified"] for item in answer["objects"]]
    assert times[0] > times[2] > times[1] and abs(times[0] - time.time()) < 60
    assert _keys(_listing(client, prefix="users/alice/a/")) == ["users/alice/a/deep.mp4"]
    assert _keys(_listing(client, prefix="users/alice/nothing/")) == []
    # The one-object form answers as before.
    one = client.get("/v1/objects", params={"key": "users/alice/c.mp4"})
    assert one.status_code == 200, one.text
    assert set(one.json()) == {"key", "bucket", "size", "etag"}


def test_pages_follow_the_cursor_and_together_hold_every_object_once(api: Api) -> None:
    for name in ("e", "b", "d", "a", "c", "f"):
        _store(api, api.key("alice", name), name.encode())
    client = api.client("alice")
    everything = _keys(_listing(client))
    assert everything == [f"users/alice/{n}" for n in "abcdef"]

    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 4}
    while True:
        answer = _listing(client, **params)
        assert len(answer["objects"]) <= 4
        seen += _keys(answer)
        pages += 1
        if answer["next_cursor"] is None:
            break
        # Written between two pages: before the cursor it never shows, after it it does.
        _store(api, api.key("alice", "aa"), b"late")
        _store(api, api.key("alice", "g"), b"late")
        params = {"limit": 4, "cursor": answer["next_cursor"]}
    assert (seen, pages) == ([*everything, "users/alice/g"], 2)
    assert _keys(_listing(client, limit=1)) == everything[:1]
    assert _listing(client, limit=8)["next_cursor"] is None


def test_the_default_page_is_50_and_the_largest_1000(api: Api) -> None:
    for number in range(53):
        _store(api, api.key("alice", f"n{number:02d}"), b"")
    client = api.client("alice")
    first = _listing(client)
    assert len(first["objects"]) == 50 and first["next_cursor"]
    rest = _listing(client, cursor=first["next_cursor"])
    assert len(rest["objects"]) == 3 and rest["next_cursor"] is None
    assert len(_listing(client, limit=1000)["objects"]) == 53
    assert_problem(client.get("/v1/objects", params={"limit": 1001}), 422)


def test_a_second_principal_never_sees_the_first_ones_objects(api: Api) -> None:
    _store(api, api.key("alice", "private.mp4"), b"alice's")
    _store(api, api.key("bob", "mine.mp4"), b"bob's")
    _store(api, "users/bobby/next-door.mp4", b"not bob's")  # shares "users/bob" as text
    alice, bob = api.client("alice"), api.client("bob")

    assert _keys(_listing(bob)) == ["users/bob/mine.mp4"]
    assert _keys(_listing(alice)) == ["users/alice/private.mp4"]
    for prefix in ("users/alice/", "users/alice/private", "users/", "", "users/bo"):
        assert_problem(bob.get("/v1/objects", params={"prefix": prefix}), 403,
                       "forbidden-key")
    assert_problem(bob.get("/v1/objects", params={"key": "users/alice/private.mp4"}), 403)
    # A cursor is a place in the key order, not a prefix: one of alice's pages, given by
    # bob, still lists only bob's objects.
    _store(api, api.key("alice", "second.mp4"), b"x")
    cursor = _listing(alice, limit=1)["next_cursor"]
    assert cursor
    assert "alice" not in str(_listing(bob, cursor=cursor)["objects"])


@pytest.mark.parametrize(("params", "status", "kind"), [
    ({"limit": 0}, 422, None),
    ({"limit": -3}, 422, None),
    ({"limit": "ten"}, 422, None),
    ({"cursor": "__79"}, 400, "invalid-cursor"),  # not UTF-8
    ({"cursor": "a" * 1400}, 400, "invalid-cursor"),  # longer than any key
    ({"cursor": "!!"}, 422, None),
    ({"cursor": "x" * 5000}, 422, None),
    ({"prefix": "users/alice/../bob/"}, 400, "invalid-key"),
    ({"prefix": "users/alice/\x01"}, 400, "invalid-key"),
    ({"prefix": "users/alice/" + "x" * 1100}, 422, None),
    ({"bucket": "another-bucket"}, 400, "wrong-bucket"),
    ({"key": "users/alice/a", "limit": 5}, 422, "invalid-request"),
    ({"key": "users/alice/a", "prefix": "users/alice/"}, 422, "invalid-request"),
])
def test_every_listing_input_is_checked_with_a_4xx(api: Api, params: dict[str, Any],
                                                   status: int, kind: str | None) -> None:
    assert_problem(api.client("alice").get("/v1/objects", params=params), status, kind)


def test_the_listing_and_the_limits_need_credentials(api: Api) -> None:
    anonymous = api.client(None)
    assert_problem(anonymous.get("/v1/objects"), 401)
    assert_problem(anonymous.get("/v1/limits"), 401)


def test_the_limits_say_what_the_caller_may_do(api: Api) -> None:
    settings = api.settings
    alice = api.client("alice").get("/v1/limits")
    assert alice.status_code == 200, alice.text
    assert alice.json() == {
        "principal": "alice", "prefix": "users/alice/", "max_object_size": GiB,
        "max_open_uploads": settings.max_open_uploads, "max_parts": MAX_PARTS,
        "max_part_size": 5 * GiB, "max_sign_batch": settings.max_sign_batch,
        "url_expiry": settings.url_expiry, "rate_limit": settings.rate_limit,
        "rate_burst": settings.rate_burst}
    bob = api.client("bob").get("/v1/limits").json()
    assert (bob["principal"], bob["max_object_size"]) == ("bob", MAX_OBJECT_SIZE)


def test_the_limits_answer_the_session_cookie_of_a_page(api: Api) -> None:
    browser = api.client(None)
    signed_in = browser.post("/v1/session",
                             headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert signed_in.status_code == 204, signed_in.text
    answer = browser.get("/v1/limits")
    assert answer.status_code == 200, answer.text
    assert answer.json()["max_object_size"] == GiB
    listed = browser.get("/v1/objects")
    assert listed.status_code == 200 and listed.json()["objects"] == []

