"""``max_object_size`` holds on every path, and a principal's open uploads are bounded.

moto checks no signature or policy, so the moto tests read what was signed; the ``reals3``
tests show Ceph radosgw refusing a body over the limit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from tests.server.conftest import Api, GiB, running_api, service_settings

LIMIT = 6 * MiB


def _limited(bucket: Bucket, **overrides: Any) -> Iterator[Api]:
    """The service with alice limited to ``LIMIT`` bytes per object."""
    settings = service_settings(bucket)
    alice = settings.principals[0].model_copy(update={"max_object_size": LIMIT})
    # Parts of 5 MiB, so that a file within the limit may have several.
    with running_api(bucket, principals=(alice, *settings.principals[1:]),
                     part_size=5 * MiB, **overrides) as api:
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


def _companion_create(client: httpx.Client, size: int) -> tuple[str, str]:
    """``POST /s3/multipart`` as the upload page sends it: the file's size declared."""
    created = client.post("/s3/multipart", json={
        "filename": "big.mp4", "type": "video/mp4",
        "metadata": {"name": "big.mp4", "size": size}})
    assert created.status_code == 200, created.text
    return created.json()["uploadId"], created.json()["key"]


def _send_parts(client: httpx.Client, upload_id: str, key: str,
                sizes: list[int]) -> list[httpx.Response]:
    sent = []
    for number, size in enumerate(sizes, 1):
        url = client.get(f"/s3/multipart/{upload_id}/{number}", params={"key": key})
        assert url.status_code == 200, url.text
        sent.append(put(url.json()["url"], bytes([number]) * size))
    return sent


def test_a_companion_upload_over_the_limit_is_refused_at_creation(limited_api: Api) -> None:
    client = limited_api.client()
    for size in (LIMIT + 1, 10**400, "7340032"):
        refused = client.post("/s3/multipart", json={"filename": "big.mp4",
                                                     "metadata": {"size": size}})
        assert "most you may upload" in assert_companion_error(refused, 400)
    for undeclared in ({}, {"size": None}, {"size": -1}, {"size": 1.5}, {"size": True},
                       {"size": "1e6"}, {"size": "٣"}):
        refused = client.post("/s3/multipart", json={"filename": "big.mp4",
                                                     "metadata": undeclared})
        assert "metadata.size" in assert_companion_error(refused, 400)
    assert limited_api.bucket.open_uploads() == []


def test_companion_parts_are_signed_with_their_size_in_the_plan(limited_api: Api) -> None:
    api = limited_api
    client = api.client()
    upload_id, key = _companion_create(client, LIMIT)  # parts of 5 MiB and 1 MiB
    for number in (1, 2):
        url = client.get(f"/s3/multipart/{upload_id}/{number}", params={"key": key})
        query = parse_qs(urlsplit(url.json()["url"]).query)
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
        batch = client.get(f"/s3/multipart/{upload_id}/batch",
                           params={"key": key, "partNumbers": str(number)})
        signed = urlsplit(batch.json()["presignedUrls"][str(number)]).query
        assert "content-length" in parse_qs(signed)["X-Amz-SignedHeaders"][0].split(";")
    assert "outside the declared" in assert_companion_error(
        client.get(f"/s3/multipart/{upload_id}/3", params={"key": key}), 400)
    # The declaration cannot be changed, nor moved to another key.
    s3_id, _, tail = upload_id.rpartition("~")
    grown = f"{s3_id}~{10 * GiB}.{tail.split('.', 1)[1]}"
    for altered, on_key in ((grown, key), (upload_id, "users/alice/other.mp4")):
        message = assert_companion_error(
            client.get(f"/s3/multipart/{altered}/1", params={"key": on_key}), 404)
        assert "was not made for key" in message
    # An upload started without a declared size gets no Companion part URLs.
    native = client.post("/v1/uploads", json={"key": "users/alice/n.bin", "size": 1}).json()
    assert "metadata.size" in assert_companion_error(client.get(
        f"/s3/multipart/{native['upload_id']}/1", params={"key": native["key"]}), 400)


def test_another_replica_signs_a_declared_upload(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket) as first, running_api(moto_bucket) as second:
        upload_id, key = _companion_create(first.client(), 9 * MiB)
        url = second.client().get(f"/s3/multipart/{upload_id}/2", params={"key": key})
        assert url.status_code == 200, url.text
        assert f"uploadId={upload_id.split('~')[0]}" in url.json()["url"].replace("%7E", "~")


def test_a_companion_upload_over_the_limit_is_refused_and_aborted(limited_api: Api) -> None:
    # moto does not check the signed length: a part longer than declared is stored, and
    # completion still refuses the total.
    client = limited_api.client()
    upload_id, key = _companion_create(client, LIMIT)
    sent = _send_parts(client, upload_id, key, [5 * MiB, 2 * MiB])
    done = client.post(f"/s3/multipart/{upload_id}/complete", params={"key": key}, json={
        "parts": [{"PartNumber": n, "ETag": s.headers["ETag"]} for n, s in enumerate(sent, 1)]})
    assert "aborted" in assert_companion_error(done, 400)
    assert limited_api.bucket.open_uploads() == []
    assert limited_api.bucket.client.list_objects_v2(
        Bucket=limited_api.bucket.name).get("KeyCount") == 0
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}/2", params={"key": key}),
                           404)


@pytest.mark.reals3
def test_storage_refuses_a_companion_part_longer_than_declared(real_limited_api: Api) -> None:
    api = real_limited_api
    client = api.client()
    upload_id, key = _companion_create(client, LIMIT)
    first, longer = _send_parts(client, upload_id, key, [5 * MiB, 2 * MiB])
    assert first.status_code == 200, first.text
    assert longer.status_code == 403 and "SignatureDoesNotMatch" in longer.text
    again = client.get(f"/s3/multipart/{upload_id}/2", params={"key": key})
    second = put(again.json()["url"], b"y" * MiB)
    assert second.status_code == 200, second.text
    done = client.post(f"/s3/multipart/{upload_id}/complete", params={"key": key}, json={
        "parts": [{"PartNumber": 1, "ETag": first.headers["ETag"]},
                  {"PartNumber": 2, "ETag": second.headers["ETag"]}]})
    assert done.status_code == 200, done.text
    assert api.bucket.read(key) == bytes([1]) * (5 * MiB) + b"y" * MiB


def test_open_uploads_per_principal_are_capped(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket, max_open_uploads=3) as api:
        alice, bob = api.client(), api.client("bob")
        created = [alice.post("/v1/uploads", json={"filename": f"{n}.bin", "size": 1}).json()
                   for n in range(3)]
        refused = assert_problem(alice.post("/v1/uploads", json={"filename": "3.bin",
                                                                 "size": 1}),
                                 409, "too-many-uploads")
        assert "3 or more open uploads" in refused["detail"]
        assert_companion_error(alice.post("/s3/multipart", json={
            "filename": "c.bin", "metadata": {"size": 1}}), 409)
        assert bob.post("/v1/uploads", json={"filename": "b.bin", "size": 1}).status_code == 200
        first = created[0]
        gone = alice.delete(f"/v1/uploads/{first['upload_id']}", params={"key": first["key"]})
        assert gone.status_code == 204
        assert alice.post("/v1/uploads", json={"filename": "3.bin", "size": 1}
                          ).status_code == 200
        assert len(api.bucket.open_uploads()) == 4  # alice 3, bob 1
