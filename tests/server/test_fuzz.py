"""No input a caller can send makes the service answer 5xx: every route's path, query and
body values are generated (hypothesis) and sent to the real service over HTTP, in front of
moto; every answer must be below 500. Each test prints how many requests it sent.

Values include the shapes that broke decoders before: integers hundreds of digits long
(``float()`` overflows), JSON nested deeper than the parser's recursion limit, and cursors
that are the base64url of either.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Bucket
from tests.server.conftest import Api, running_api

EXAMPLES = 150
_FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_HUGE = st.integers(min_value=10**300, max_value=10**400) | st.integers(max_value=-10**300)
_SCALAR = (st.none() | st.booleans() | st.integers() | _HUGE
           | st.floats(allow_nan=False) | st.text(max_size=40))
_JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALAR, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
_DEEP = st.integers(min_value=900, max_value=3000).map(lambda n: "[" * n + "]" * n)
_RAW_BODY = _DEEP | st.text(max_size=200) | _JSON.map(lambda v: json.dumps(v))
_ENCODED = (_JSON | st.tuples(_HUGE, st.text(max_size=5)).map(list)).map(
    lambda v: _b64(json.dumps(v).encode())) | _DEEP.map(lambda d: _b64(d.encode()))
_CURSOR = st.text(max_size=60) | _ENCODED
_QUERY_VALUE = st.text(max_size=80) | _HUGE.map(str) | _CURSOR
_SEGMENT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1,
                   max_size=40).map(lambda s: quote(s, safe=""))  # one path segment, encoded


class _Sent:
    """Counts the requests sent and fails on the first 5xx, naming it."""

    def __init__(self, api: Api) -> None:
        self.count = 0
        self.api = api

    def __call__(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> None:
        self.count += 1
        answer = client.request(method, path, **kwargs)
        assert answer.status_code < 500, (method, path, kwargs, answer.status_code,
                                          answer.text[:300])


@pytest.fixture
def fuzzed(moto_bucket: Bucket) -> Iterator[tuple[Api, _Sent]]:
    # The rate limit is not what this test is about: make it roomy.
    with running_api(moto_bucket, rate_limit=10_000, rate_burst=10_000) as api:
        sent = _Sent(api)
        yield api, sent
        print(f"\n{sent.count} generated requests, no 5xx")


@_FUZZ
@given(cursor=_CURSOR, prefix=_QUERY_VALUE, limit=_QUERY_VALUE, bucket=_QUERY_VALUE)
def test_listing_queries(fuzzed: tuple[Api, _Sent], cursor: str, prefix: str, limit: str,
                         bucket: str) -> None:
    api, send = fuzzed
    client = api.client()
    send(client, "GET", "/v1/objects", params={"cursor": cursor})
    send(client, "GET", "/v1/objects", params={"cursor": cursor, "prefix": prefix,
                                               "limit": limit})
    send(client, "GET", "/v1/uploads", params={"prefix": prefix, "bucket": bucket})


@_FUZZ
@given(body=_RAW_BODY, upload_id=_SEGMENT, key=_QUERY_VALUE)
def test_json_bodies(fuzzed: tuple[Api, _Sent], body: str, upload_id: str, key: str) -> None:
    api, send = fuzzed
    client = api.client()
    headers = {"Content-Type": "application/json"}
    for path in ("/v1/uploads", f"/v1/uploads/{upload_id}/sign",
                 f"/v1/uploads/{upload_id}/complete", "/s3/multipart",
                 f"/s3/multipart/{upload_id}/complete"):
        send(client, "POST", path, content=body.encode(), headers=headers,
             params={"key": key})


@_FUZZ
@given(value=_JSON, upload_id=_SEGMENT, part=_QUERY_VALUE, key=_QUERY_VALUE)
def test_structured_bodies_and_paths(fuzzed: tuple[Api, _Sent], value: Any, upload_id: str,
                                     part: str, key: str) -> None:
    api, send = fuzzed
    client = api.client()
    own = api.key("alice", "f.bin")
    for body in (value, {"key": own, "size": value}, {"key": value, "size": 1},
                 {"key": own, "size": 1, "metadata": value, "content_type": value},
                 {"key": own, "parts": value}, {"key": own, "parts": [{"number": value}]},
                 {"filename": value, "type": value, "metadata": value}):
        send(client, "POST", "/v1/uploads", content=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
        send(client, "POST", f"/v1/uploads/{upload_id}/sign", content=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
        send(client, "POST", "/s3/multipart", content=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
    send(client, "GET", f"/v1/uploads/{upload_id}/parts", params={"key": key})
    send(client, "DELETE", f"/v1/uploads/{upload_id}", params={"key": key})
    send(client, "GET", f"/s3/multipart/{upload_id}", params={"key": key})
    send(client, "GET", f"/s3/multipart/{upload_id}/batch",
         params={"key": key, "partNumbers": part})
    send(client, "GET", f"/s3/multipart/{upload_id}/{quote(part, safe='')}",
         params={"key": key})
    send(client, "DELETE", f"/s3/multipart/{upload_id}", params={"key": key})
    send(client, "GET", "/s3/params", params={"filename": key, "type": part,
                                              "metadata[name]": key})


_HEADER_TEXT = st.from_regex(r"[!-~]{1,120}", fullmatch=True)  # what a header can carry


@_FUZZ
@given(token=_HEADER_TEXT, cookie=_HEADER_TEXT | _ENCODED, signed=_RAW_BODY)
def test_credentials_and_cookies(fuzzed: tuple[Api, _Sent], token: str, cookie: str,
                                 signed: str) -> None:
    api, send = fuzzed
    anonymous = api.client(None)
    send(anonymous, "GET", "/v1/limits", headers={"Authorization": f"Bearer {token}"})
    crafted = f"{_b64(signed.encode())}.{_b64(cookie.encode())}"
    for value in (cookie, crafted):
        if ";" not in value:
            send(anonymous, "GET", "/v1/limits",
                 headers={"Cookie": f"streamify_session={value}"})
