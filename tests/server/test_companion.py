"""The Uppy Companion S3 routes: Companion's paths, shapes and status codes."""

from __future__ import annotations

import httpx

from tests.server._support import MiB, assert_companion_error, post_form, put
from tests.server.conftest import Api


def _create(client: httpx.Client, filename: str = "holiday.mp4",
            size: int = 9 * MiB) -> dict[str, str]:
    """As Uppy with the upload page: the file's size declared in its metadata."""
    response = client.post("/s3/multipart", json={
        "filename": filename, "type": "video/mp4",
        "metadata": {"name": filename, "type": "video/mp4", "relativePath": None,
                     "size": size}})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def test_a_companion_multipart_upload_round_trip(api: Api) -> None:
    client = api.client()
    created = _create(client)
    assert created == {"key": "users/alice/holiday.mp4", "uploadId": created["uploadId"],
                       "bucket": api.bucket.name}
    upload_id, key = created["uploadId"], created["key"]
    assert client.get(f"/s3/multipart/{upload_id}", params={"key": key}).json() == []

    batch = client.get(f"/s3/multipart/{upload_id}/batch",
                       params={"key": key, "partNumbers": "1,2"})
    assert batch.status_code == 200
    assert set(batch.json()) == {"presignedUrls"}
    assert set(batch.json()["presignedUrls"]) == {"1", "2"}
    single = client.get(f"/s3/multipart/{upload_id}/2", params={"key": key})
    assert single.status_code == 200
    assert set(single.json()) == {"url", "expires"}
    assert single.json()["expires"] == api.settings.url_expiry

    # The service's plan for 9 MiB: a part of 8 MiB, then one of 1 MiB.
    first, second = b"a" * (8 * MiB), b"b" * MiB
    etag1 = put(batch.json()["presignedUrls"]["1"], first).headers["ETag"]
    etag2 = put(single.json()["url"], second).headers["ETag"]

    listed = client.get(f"/s3/multipart/{upload_id}", params={"key": key}).json()
    assert listed == [{"PartNumber": 1, "ETag": etag1, "Size": 8 * MiB},
                      {"PartNumber": 2, "ETag": etag2, "Size": MiB}]
    assert isinstance(listed[0]["PartNumber"], int)

    done = client.post(f"/s3/multipart/{upload_id}/complete", params={"key": key},
                       json={"parts": [{"PartNumber": 1, "ETag": etag1},
                                       {"PartNumber": 2, "ETag": etag2}]})
    assert done.status_code == 200, done.text
    assert set(done.json()) == {"location", "key", "bucket"}
    assert done.json()["key"] == key and done.json()["location"].endswith(
        "/users/alice/holiday.mp4")
    assert api.bucket.read(key) == first + second
    head = api.bucket.client.head_object(Bucket=api.bucket.name, Key=key)
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"name": "holiday.mp4", "type": "video/mp4",
                                "size": str(9 * MiB)}


def test_abort_answers_an_empty_object(api: Api) -> None:
    client = api.client()
    created = _create(client)
    aborted = client.delete(f"/s3/multipart/{created['uploadId']}",
                            params={"key": created["key"]})
    assert (aborted.status_code, aborted.json()) == (200, {})
    assert api.bucket.open_uploads() == []
    assert_companion_error(client.get(f"/s3/multipart/{created['uploadId']}",
                                      params={"key": created["key"]}), 404)


def test_companion_errors_are_an_error_field_with_a_4xx(api: Api) -> None:
    client = api.client()
    created = _create(client)
    upload_id, key = created["uploadId"], created["key"]
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}"), 400)  # no key
    for number in ("0", "10001", "abc", "1.5"):
        message = assert_companion_error(
            client.get(f"/s3/multipart/{upload_id}/{number}", params={"key": key}), 400)
        assert "between 1 and 10000" in message
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}/batch",
                                      params={"key": key, "partNumbers": "1,x"}), 400)
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}/batch",
                                      params={"key": key}), 400)
    assert_companion_error(client.post(f"/s3/multipart/{upload_id}/complete",
                                       params={"key": key}, json={"parts": "x"}), 400)
    assert_companion_error(client.post(f"/s3/multipart/{upload_id}/complete",
                                       params={"key": key}, json={"parts": [{"ETag": "x"}]}),
                           400)
    assert_companion_error(client.get("/s3/multipart/no-such-upload/1", params={"key": key}),
                           404)
    assert_companion_error(client.get(f"/s3/multipart/{upload_id}/1",
                                      params={"key": "users/alice/../x"}), 400)
    assert_companion_error(client.post("/s3/multipart", json={"type": "video/mp4"}), 400)
    assert_companion_error(api.client(None).post("/s3/multipart", json={"filename": "a"}), 401)


def test_a_ten_thousand_part_completion_body_is_accepted(api: Api) -> None:
    client = api.client()
    created = _create(client)
    parts = [{"PartNumber": n, "ETag": f'"{n:032x}"'} for n in range(1, 10_001)]
    response = client.post(f"/s3/multipart/{created['uploadId']}/complete",
                           params={"key": created["key"]}, json={"parts": parts})
    assert len(response.request.content) > 500_000
    # Read and judged, not refused for its size: S3 holds none of these parts.
    message = assert_companion_error(response, 400)
    assert "InvalidPart" in message


def test_params_for_a_small_single_request_upload(api: Api) -> None:
    client = api.client()
    response = client.get("/s3/params", params={
        "filename": "notes.txt", "type": "text/plain", "metadata[name]": "notes.txt"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "POST" and body["headers"] == {}
    fields = body["fields"]
    assert fields["key"] == "users/alice/notes.txt"
    assert (fields["Content-Type"], fields["x-amz-meta-name"]) == ("text/plain", "notes.txt")
    sent = post_form(body["url"], fields, b"hello")
    assert sent.status_code == 204, sent.text
    assert api.bucket.read("users/alice/notes.txt") == b"hello"
    head = api.bucket.client.head_object(Bucket=api.bucket.name, Key="users/alice/notes.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"name": "notes.txt"})
    assert_companion_error(client.get("/s3/params", params={"filename": "a",
                                                            "metadata[bad name]": "x"}), 400)
