"""``max_object_size`` holds on every path, and a principal's open uploads are bounded.

moto checks no signature or policy, so the moto tests read what was signed; the ``reals3``
tests show Ceph radosgw refusing a body over the limit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Bucket
from tests.server._support import (
    MiB,
    assert_companion_error,
    assert_problem,
    post_form,
    put,
)
from tests.server.conftest import Api, running_api, service_settings

LIMIT = 6 * MiB


def _limited(bucket: Bucket, **overrides: Any) -> Iterator[Api]:
    """The service with alice limited to ``LIMIT`` bytes per object."""
    settings = service_settings(bucket)
    alice = settings.principals[0].model_copy(update={"max_object_size": LIMIT})
    with running_api(bucket, principals=(alice, *settings.principals[1:]),
                     **overrides) as api:
        yield api


@pytest.fixture
def limited_api(moto_bucket: Bucket) -> Iterator[Api]:
    yield from _limited(moto_bucket)


@pytest.fixture
def real_limited_api(real_bucket: Bucket) -> Iterator[Api]:
    yield from _limited(real_bucket)


def _params(api: Api, filename: str) -> dict[str, Any]:
    response = api.client().get("/s3/params", params={"filename": filename,
                                                      "type": "video/mp4"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["method"] == "POST" and body["headers"] == {}
    return body


def test_a_single_request_upload_is_signed_with_the_size_limit(limited_api: Api) -> None:
    body = _params(limited_api, "clip.mp4")
    policy = json.loads(base64.b64decode(body["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 0, LIMIT] in conditions
    assert {"key": "users/alice/clip.mp4"} in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert_companion_error(limited_api.client().get(
        "/s3/params", params={"filename": "a${filename}"}), 400)


@pytest.mark.reals3
def test_storage_refuses_a_single_request_upload_over_the_limit(real_limited_api: Api) -> None:
    api = real_limited_api
    body = _params(api, "clip.mp4")
    over = post_form(body["url"], body["fields"], b"x" * (LIMIT + 1))
    assert over.status_code == 400 and "EntityTooLarge" in over.text
    assert api.bucket.client.list_objects_v2(Bucket=api.bucket.name).get("KeyCount") == 0
    # The key is signed in: the same form cannot write elsewhere.
    moved = post_form(body["url"], {**body["fields"], "key": "users/bob/clip.mp4"}, b"x")
    assert moved.status_code == 403
    within = post_form(body["url"], body["fields"], b"y" * LIMIT)
    assert within.status_code == 204, within.text
    assert api.bucket.read("users/alice/clip.mp4") == b"y" * LIMIT


def _companion_upload(api: Api, sizes: list[int]) -> tuple[httpx.Client, str, str, list[str]]:
    """A Companion-mode upload (no sizes declared) with parts of ``sizes`` sent."""
    client = api.client()
    created = client.post("/s3/multipart", json={"filename": "big.mp4", "type": "video/mp4"})
    assert created.status_code == 200, created.text
    upload_id, key = created.json()["uploadId"], created.json()["key"]
    etags = []
    for number, size in enumerate(sizes, 1):
        url = client.get(f"/s3/multipart/{upload_id}/{number}", params={"key": key})
        sent = put(url.json()["url"], bytes([number]) * size)
        assert sent.status_code == 200, sent.text
        etags.append(sent.headers["ETag"])
    return client, upload_id, key, etags


def _assert_refused_and_aborted(api: Api, sizes: list[int]) -> None:
    client, upload_id, key, etags = _companion_upload(api, sizes)
    done = client.post(f"/s3/multipart/{upload_id}/complete", params={"key": key}, json={
        "parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    message = assert_companion_error(done, 400)
    assert "aborted" in message
    assert api.bucket.open_uploads() == []
    assert api.bucket.client.list_objects_v2(Bucket=api.bucket.name).get("KeyCount") == 0
    # Its parts are gone, and so are any further URLs for it.
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}/3", params={"key": key}),
                           404)


def test_a_companion_upload_over_the_limit_is_refused_and_aborted(limited_api: Api) -> None:
    _assert_refused_and_aborted(limited_api, [5 * MiB, 2 * MiB])


@pytest.mark.reals3
def test_a_companion_upload_over_the_limit_is_aborted_on_real_s3(
        real_limited_api: Api) -> None:
    _assert_refused_and_aborted(real_limited_api, [5 * MiB, 2 * MiB])


def test_open_uploads_per_principal_are_capped(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket, max_open_uploads=3) as api:
        alice, bob = api.client(), api.client("bob")
        created = [alice.post("/v1/uploads", json={"filename": f"{n}.bin", "size": 1}).json()
                   for n in range(3)]
        refused = assert_problem(alice.post("/v1/uploads", json={"filename": "3.bin",
                                                                 "size": 1}),
                                 409, "too-many-uploads")
        assert "3 open uploads" in refused["detail"]
        assert_companion_error(alice.post("/s3/multipart", json={"filename": "c.bin"}), 409)
        assert bob.post("/v1/uploads", json={"filename": "b.bin", "size": 1}).status_code == 200
        first = created[0]
        gone = alice.delete(f"/v1/uploads/{first['upload_id']}", params={"key": first["key"]})
        assert gone.status_code == 204
        assert alice.post("/v1/uploads", json={"filename": "3.bin", "size": 1}
                          ).status_code == 200
        assert len(api.bucket.open_uploads()) == 4  # alice 3, bob 1
