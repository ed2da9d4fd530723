"""The native ``/v1`` routes through a real uvicorn, in front of moto."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server._support import MiB, assert_problem, md5_b64, put
from tests.server.conftest import Api, GiB

TiB = 1024 * GiB


def _upload(client: httpx.Client, key: str, data: bytes, part_size: int = 5 * MiB
            ) -> tuple[str, list[dict[str, object]]]:
    """Create an upload of ``data`` at ``key`` and send every part; return (id, parts)."""
    created = client.post("/v1/uploads", json={"key": key, "size": len(data),
                                               "part_size": part_size})
    assert created.status_code == 200, created.text
    upload_id = created.json()["upload_id"]
    chunks = [data[i:i + part_size] for i in range(0, len(data), part_size)] or [b""]
    signed = client.post(f"/v1/uploads/{upload_id}/sign", json={"key": key, "parts": [
        {"number": n, "size": len(c), "md5": md5_b64(c)} for n, c in enumerate(chunks, 1)]})
    assert signed.status_code == 200, signed.text
    parts = []
    for item, chunk in zip(signed.json()["parts"], chunks, strict=True):
        response = put(item["url"], chunk, item["headers"])
        assert response.status_code == 200, response.text
        parts.append({"number": item["number"], "etag": response.headers["ETag"]})
    return upload_id, parts


def test_a_native_upload_creates_signs_lists_and_completes(api: Api) -> None:
    client = api.client()
    data = hashlib.sha256(b"seed").digest() * (12 * MiB // 32)
    created = client.post("/v1/uploads", json={
        "filename": "My Videos/clip one.mp4", "size": len(data), "part_size": 5 * MiB,
        "content_type": "video/mp4", "metadata": {"camera": "a7"}})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["key"] == "users/alice/clip one.mp4"  # last path component, in the prefix
    assert body["bucket"] == api.bucket.name
    assert (body["part_size"], body["parts"]) == (5 * MiB, 3)

    key, upload_id = body["key"], body["upload_id"]
    chunks = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    signed = client.post(f"/v1/uploads/{upload_id}/sign", json={"key": key, "parts": [
        {"number": n, "size": len(c), "md5": md5_b64(c)} for n, c in enumerate(chunks, 1)]})
    assert signed.status_code == 200, signed.text
    urls = signed.json()["parts"]
    assert [u["number"] for u in urls] == [1, 2, 3]
    assert [u["headers"] for u in urls] == [{"Content-MD5": md5_b64(c)} for c in chunks]
    etags = [put(u["url"], c, u["headers"]).headers["ETag"]
             for u, c in zip(urls, chunks, strict=True)]

    listed = client.get(f"/v1/uploads/{upload_id}/parts", params={"key": key})
    assert listed.status_code == 200
    assert [(p["number"], p["size"]) for p in listed.json()["parts"]] == [
        (1, 5 * MiB), (2, 5 * MiB), (3, 2 * MiB)]
    # Housekeeping through the service judges an upload's age by its newest part.
    assert all(abs(p["last_modified"] - time.time()) < 3600 for p in listed.json()["parts"])

    done = client.post(f"/v1/uploads/{upload_id}/complete", json={"key": key, "parts": [
        {"number": n, "etag": e} for n, e in enumerate(etags, 1)]})
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["size"] == len(data) and result["etag"].endswith("-3")
    assert result["location"].endswith(f"/{api.bucket.name}/users/alice/clip%20one.mp4")
    assert api.bucket.read(key) == data
    head = api.bucket.client.head_object(Bucket=api.bucket.name, Key=key)
    assert head["ContentType"] == "video/mp4" and head["Metadata"] == {"camera": "a7"}

    info = client.get("/v1/objects", params={"key": key})
    assert info.json() == {"key": key, "bucket": api.bucket.name, "size": len(data),
                           "etag": result["etag"]}
    assert_problem(client.get("/v1/objects", params={"key": "users/alice/none"}), 404,
                   "object-not-found")


def test_repeating_a_completion_that_succeeded_answers_the_same(api: Api) -> None:
    client = api.client()
    key = api.key("alice", "twice.bin")
    upload_id, parts = _upload(client, key, b"x" * (6 * MiB))
    request = {"key": key, "parts": parts}
    first = client.post(f"/v1/uploads/{upload_id}/complete", json=request)
    again = client.post(f"/v1/uploads/{upload_id}/complete", json=request)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()

    other = {"key": key, "parts": [{"number": 1, "etag": "0" * 32}, parts[1]]}
    assert_problem(client.post(f"/v1/uploads/{upload_id}/complete", json=other), 404,
                   "upload-gone")


def test_open_uploads_are_listed_and_aborted(api: Api) -> None:
    client = api.client()
    first = client.post("/v1/uploads", json={"filename": "a.bin", "size": 1}).json()
    second = client.post("/v1/uploads", json={"filename": "b/c.bin", "size": 1}).json()

    listed = client.get("/v1/uploads").json()["uploads"]
    assert {(u["key"], u["upload_id"]) for u in listed} == {
        (first["key"], first["upload_id"]), (second["key"], second["upload_id"])}
    narrowed = client.get("/v1/uploads", params={"prefix": "users/alice/a"}).json()["uploads"]
    assert [u["key"] for u in narrowed] == ["users/alice/a.bin"]

    gone = client.delete(f"/v1/uploads/{first['upload_id']}", params={"key": first["key"]})
    assert gone.status_code == 204
    assert [u["UploadId"] for u in api.bucket.open_uploads()] == [second["upload_id"]]
    assert_problem(client.get(f"/v1/uploads/{first['upload_id']}/parts",
                              params={"key": first["key"]}), 404, "upload-gone")
    assert_problem(client.delete(f"/v1/uploads/{first['upload_id']}",
                                 params={"key": first["key"]}), 404, "upload-gone")


@pytest.fixture
def no_upload_left(api: Api) -> Iterator[None]:
    """After the test, S3 holds no upload: nothing refused ever reached it."""
    yield
    assert api.bucket.open_uploads() == []


@pytest.mark.parametrize(("key", "status", "kind"), [
    ("users/alice/../bob/x.bin", 400, "invalid-key"),
    ("users/alice/./x.bin", 400, "invalid-key"),
    ("users/alice/a\x00b", 400, "invalid-key"),
    ("users/alice/a\nb", 400, "invalid-key"),
    ("users/alice/a\x7fb", 400, "invalid-key"),
    ("/users/alice/x.bin", 400, "invalid-key"),
    ("users/alice/" + "é" * 507, 400, "invalid-key"),  # 1026 bytes in UTF-8
    ("users/alice/folder/", 400, "invalid-key"),
    ("users/bob/x.bin", 403, "forbidden-key"),
    ("users/alicex/x.bin", 403, "forbidden-key"),
    ("x.bin", 403, "forbidden-key"),
])
@pytest.mark.usefixtures("no_upload_left")
def test_bad_keys_are_refused_before_s3_sees_them(api: Api, key: str, status: int,
                                                  kind: str) -> None:
    response = api.client().post("/v1/uploads", json={"key": key, "size": 10})
    assert_problem(response, status, kind)


@pytest.mark.usefixtures("no_upload_left")
def test_oversize_declarations_are_refused(api: Api) -> None:
    client = api.client()
    assert_problem(client.post("/v1/uploads", json={"filename": "big", "size": GiB + 1}),
                   400, "object-too-large")
    bob = api.client("bob")
    assert_problem(bob.post("/v1/uploads", json={"filename": "big", "size": 5 * TiB + 1}),
                   400, "object-too-large")
    assert_problem(client.post("/v1/uploads", json={"filename": "x", "size": -1}), 422)
    assert_problem(client.post("/v1/uploads", json={"filename": "x", "size": 1,
                                                    "part_size": 1024}), 422)


def test_signing_checks_numbers_sizes_and_digests(api: Api) -> None:
    client = api.client()
    key = api.key("alice", "s.bin")
    upload_id = client.post("/v1/uploads", json={"key": key, "size": 20 * MiB}).json()[
        "upload_id"]
    url = f"/v1/uploads/{upload_id}/sign"
    for part in ({"number": 0}, {"number": 10_001}, {"number": 1, "size": -1}):
        assert_problem(client.post(url, json={"key": key, "parts": [part]}), 422)
    for parts, detail in [
        ([{"number": 1}, {"number": 1}], "twice"),
        ([{"number": 1, "size": GiB + 1}], "outside"),
        ([{"number": 1, "md5": "not-an-md5"}], "MD5"),
        ([{"number": n} for n in range(1, 102)], "1 to 100 parts"),
    ]:
        problem = assert_problem(client.post(url, json={"key": key, "parts": parts}), 400)
        assert detail in problem["detail"]
    assert_problem(client.post(url, json={"key": key, "parts": []}), 422)


def test_problem_details_for_malformed_requests(api: Api) -> None:
    client = api.client()
    assert_problem(client.post("/v1/uploads", json={}), 422, "invalid-request")
    assert_problem(client.post("/v1/uploads", content=b"{not json",
                               headers={"Content-Type": "application/json"}), 422)
    assert_problem(client.post("/v1/uploads", json={"key": "users/alice/a", "filename": "a",
                                                    "size": 1}), 422)
    assert_problem(client.post("/v1/uploads", json={"key": "users/alice/a", "size": 1,
                                                    "bucket": "elsewhere"}), 400, "wrong-bucket")
    assert_problem(client.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(client.put("/v1/uploads"), 405)


def test_request_bodies_are_limited(api: Api) -> None:
    client = api.client()
    huge = b'{"key": "users/alice/x", "parts": [' + b" " * (3 * MiB) + b"]}"
    assert_problem(client.post("/v1/uploads/u/complete", content=huge,
                               headers={"Content-Type": "application/json"}), 413)

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"key": "users/alice/x", "parts": ['
        for _ in range(48):
            yield b" " * 65536
        yield b"]}"

    assert_problem(client.post("/v1/uploads/u/complete", content=streamed(),
                               headers={"Content-Type": "application/json"}), 413)


def test_health_and_openapi(api: Api) -> None:
    client = api.client(None)
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/uploads", "/v1/uploads/{upload_id}/sign", "/v1/objects", "/v1/session",
            "/s3/multipart", "/s3/multipart/{uploadId}/batch", "/s3/params"} <= set(paths)
