"""Operating the service: Prometheus metrics at /metrics, readiness at /readyz, JSON log
lines carrying a request id. (Draining a real ``streamify serve`` on SIGTERM is in
``test_drain.py``.)"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from streamify.server._logs import JsonLogFormatter

from tests.conftest import Bucket, free_port
from tests.redis_server import RedisServer
from tests.server._support import assert_problem, put
from tests.server.conftest import COOKIE_SECRET, TOKENS, Api, running_api
from tests.wireproxy import WireProxy, any_request

HEX_ID = re.compile(r"[0-9a-f]{32}")
AWS_SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]  # the service's own (tests/conftest.py)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> Samples:
    """Every sample of ``/metrics``: (name, labels) -> value."""
    response = httpx.get(f"{api.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_records(api: Api) -> list[dict[str, Any]]:
    """The log lines, each a JSON object."""
    return [json.loads(line) for line in api.capture.lines]


def access_ids(api: Api, count: int, timeout: float = 10.0) -> list[str]:
    """The request ids of the access lines, once ``count`` are written: a request's
    line follows its answer, so the client can read the answer before the line is out."""
    deadline = time.monotonic() + timeout
    while True:
        ids = [r["request_id"] for r in log_records(api)
               if r["logger"] == "streamify.server.access"]
        if len(ids) >= count or time.monotonic() > deadline:
            return ids
        time.sleep(0.02)


@contextlib.contextmanager
def serving(bucket: Bucket, **overrides: Any) -> Iterator[Api]:
    """The service for ``bucket``, every log line from now on captured as ``streamify
    serve`` writes it (``JsonLogFormatter``)."""
    # Readiness checks get all the time a loaded machine may need, unless a test says.
    overrides.setdefault("ready_timeout", 30)
    with running_api(bucket, **overrides) as api:
        api.capture.setFormatter(JsonLogFormatter())
        api.capture.lines.clear()  # the server's start, before the formatter was set
        yield api


def _small_upload(client: httpx.Client, key: str) -> tuple[str, str]:
    """A 5-byte upload started and its one part sent: (upload id, part ETag)."""
    upload_id = client.post("/v1/uploads", json={"key": key, "size": 5}).json()["upload_id"]
    signed = client.post(f"/v1/uploads/{upload_id}/sign",
                         json={"key": key, "parts": [{"number": 1}]})
    assert signed.status_code == 200, signed.text
    return upload_id, put(signed.json()["parts"][0]["url"], b"hello").headers["ETag"]


# ---------------------------------------------------------------------------- /metrics
def test_metrics_count_uploads_signed_urls_and_declared_bytes(moto_bucket: Bucket) -> None:
    with serving(moto_bucket) as served:
        client = served.client()
        before = scrape(served)
        done_id, etag = _small_upload(client, "users/alice/done.bin")
        assert client.post(f"/v1/uploads/{done_id}/complete", json={
            "key": "users/alice/done.bin",
            "parts": [{"number": 1, "etag": etag}]}).status_code == 200
        # A repeated completion answers the same, but the upload completed once.
        assert client.post(f"/v1/uploads/{done_id}/complete", json={
            "key": "users/alice/done.bin",
            "parts": [{"number": 1, "etag": etag}]}).status_code == 200
        gone_id = client.post("/v1/uploads", json={
            "key": "users/alice/gone.bin", "size": 7 * 1024**2}).json()["upload_id"]
        assert client.post(f"/v1/uploads/{gone_id}/sign", json={
            "key": "users/alice/gone.bin",
            "parts": [{"number": 1}, {"number": 2}]}).status_code == 200
        assert client.delete(f"/v1/uploads/{gone_id}",
                             params={"key": "users/alice/gone.bin"}).status_code == 204
        after = scrape(served)
        text = httpx.get(f"{served.url}/metrics").text

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("streamify_uploads_created_total") == 2
    assert moved("streamify_uploads_completed_total") == 1
    assert moved("streamify_uploads_aborted_total") == 1
    assert moved("streamify_urls_signed_total") == 3
    assert moved("streamify_declared_bytes_total") == 5 + 7 * 1024**2
    # Requests by route template, never by the path sent (it holds keys and upload ids).
    assert moved("streamify_http_requests_total", route="/v1/uploads", method="POST",
                 status="200") == 2
    assert moved("streamify_http_requests_total", route="/v1/uploads/{upload_id}/sign",
                 method="POST", status="200") == 2
    assert moved("streamify_http_request_duration_seconds_count",
                 route="/v1/uploads/{upload_id}/complete", method="POST") == 2
    assert value(after, "streamify_http_request_duration_seconds_bucket",
                 route="/v1/uploads/{upload_id}/complete", method="POST", le="+Inf") == 2
    for secret in (done_id, gone_id, "users/alice", "done.bin", "alice", TOKENS["alice"],
                   COOKIE_SECRET, AWS_SECRET):
        assert secret not in text


def test_problems_are_counted_by_reason_and_storage_errors_by_code(
        moto_bucket: Bucket) -> None:
    with serving(moto_bucket, rate_limit=0.01, rate_burst=2) as served:
        client = served.client()
        assert_problem(client.post("/v1/uploads/no-such-upload/sign", json={
            "key": "users/alice/x", "parts": [{"number": 1}]}), 404, "upload-gone")
        assert_problem(client.get("/v1/no-such-route"), 404, "not-found")
        assert_problem(client.get("/v1/uploads"), 429, "rate-limited")
        samples = scrape(served)
    assert value(samples, "streamify_problems_total", status="404", type="upload-gone") == 1
    assert value(samples, "streamify_problems_total", status="404", type="not-found") == 1
    assert value(samples, "streamify_problems_total", status="429", type="rate-limited") == 1
    assert value(samples, "streamify_http_requests_total", route="(unmatched)",
                 method="GET", status="404") == 1

    dead = Bucket(f"http://127.0.0.1:{free_port()}", moto_bucket.name, moto_bucket.client)
    with serving(dead) as served:
        assert_problem(served.client().post("/v1/uploads", json={
            "filename": "a", "size": 1}), 502, "storage-unreachable")
        samples = scrape(served)
    assert value(samples, "streamify_storage_errors_total", operation="ListMultipartUploads",
                 code="EndpointConnectionError") == 1
    assert value(samples, "streamify_problems_total", status="502",
                 type="storage-unreachable") == 1


def test_metrics_can_be_switched_off(moto_bucket: Bucket) -> None:
    with serving(moto_bucket, metrics=False) as served:
        assert_problem(httpx.get(f"{served.url}/metrics"), 404, "not-found")


# ---------------------------------------------------------------------------- /readyz
def test_ready_when_storage_answers_and_unready_while_draining(moto_bucket: Bucket) -> None:
    with serving(moto_bucket) as served:
        ready = httpx.get(f"{served.url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {
            "status": "ready", "checks": {"drain": "ok", "storage": "ok"}})
        served.app.state.drain.begin()
        unready = httpx.get(f"{served.url}/readyz")
        assert (unready.status_code, unready.json()) == (503, {
            "status": "unready", "checks": {"drain": "draining"}})
        assert httpx.get(f"{served.url}/healthz").status_code == 200


def _wait_ready(served: Api) -> None:
    """Until ``/readyz`` says 200 (a loaded machine's first HEAD may outlast the check's
    timeout); at most 30 s."""
    deadline = time.monotonic() + 30
    while httpx.get(f"{served.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready in 30 s"
        time.sleep(0.2)


def test_unready_when_storage_is_unreachable_or_hangs(moto_bucket: Bucket) -> None:
    dead = Bucket(f"http://127.0.0.1:{free_port()}", moto_bucket.name, moto_bucket.client)
    with serving(dead) as served:
        answer = httpx.get(f"{served.url}/readyz")
        assert (answer.status_code, answer.json()["checks"]["storage"]) == (
            503, "EndpointConnectionError")
        assert httpx.get(f"{served.url}/healthz").status_code == 200

    missing = Bucket(moto_bucket.endpoint, "no-such-bucket-here", moto_bucket.client)
    with serving(missing) as served:
        answer = httpx.get(f"{served.url}/readyz")
        assert (answer.status_code, answer.json()["checks"]["storage"]) == (503, "404")

    proxy = WireProxy(moto_bucket.endpoint)
    try:
        with serving(Bucket(proxy.url, moto_bucket.name, moto_bucket.client),
                     ready_timeout=1) as served:
            _wait_ready(served)
            time.sleep(1.1)  # past the cached answer
            proxy.hold_requests(match=any_request)  # storage accepts, never answers
            started = time.monotonic()
            answer = httpx.get(f"{served.url}/readyz", timeout=10)
            assert (answer.status_code, answer.json()["checks"]["storage"]) == (
                503, "timeout")
            assert time.monotonic() - started < 4  # ready_timeout (1 s), not the HEAD's
    finally:
        proxy.close()


def test_storage_is_asked_at_most_once_a_second(moto_bucket: Bucket) -> None:
    proxy = WireProxy(moto_bucket.endpoint)
    try:
        with serving(Bucket(proxy.url, moto_bucket.name, moto_bucket.client)) as served:
            started = time.monotonic()
            for _ in range(20):
                assert httpx.get(f"{served.url}/readyz").status_code == 200
            seconds = time.monotonic() - started
            heads = [r for r in proxy.requests if r[0] == "HEAD"]
            assert 1 <= len(heads) <= 2 + seconds, (heads, seconds)
    finally:
        proxy.close()


def test_unready_when_the_limits_store_is_unreachable(moto_bucket: Bucket) -> None:
    with serving(moto_bucket, redis_url=f"redis://127.0.0.1:{free_port()}/0") as served:
        answer = httpx.get(f"{served.url}/readyz")
        assert (answer.status_code, answer.json()["checks"]) == (503, {
            "drain": "ok", "storage": "ok", "limits_store": "unreachable"})


@pytest.mark.redis
def test_ready_with_a_limits_store_that_answers(moto_bucket: Bucket,
                                                redis_server: RedisServer) -> None:
    with serving(moto_bucket, redis_url=redis_server.url) as served:
        answer = httpx.get(f"{served.url}/readyz")
        assert (answer.status_code, answer.json()["checks"]) == (200, {
            "drain": "ok", "storage": "ok", "limits_store": "ok"})


@pytest.mark.reals3
def test_ready_on_real_storage_and_not_for_a_missing_bucket(real_bucket: Bucket) -> None:
    with serving(real_bucket) as served:
        assert httpx.get(f"{served.url}/readyz").json()["checks"]["storage"] == "ok"
    missing = Bucket(real_bucket.endpoint, "no-such-bucket-here", real_bucket.client)
    with serving(missing) as served:
        answer = httpx.get(f"{served.url}/readyz")
        assert (answer.status_code, answer.json()["checks"]["storage"]) == (503, "404")


# ---------------------------------------------------------------------------- logs
def test_request_ids_are_echoed_made_and_on_every_line_of_the_request(
        moto_bucket: Bucket) -> None:
    with serving(moto_bucket) as served:
        client = served.client()
        given = client.get("/v1/uploads", headers={"X-Request-ID": "lb-7f3a:42"})
        assert given.headers["x-request-id"] == "lb-7f3a:42"
        made = client.get("/v1/uploads")
        assert HEX_ID.fullmatch(made.headers["x-request-id"])
        for unsafe in ("x" * 129, "a b", "<script>", "\u00e9t\u00e9"):
            refused = client.get("/v1/uploads", headers=[(b"X-Request-ID", unsafe.encode())])
            assert HEX_ID.fullmatch(refused.headers["x-request-id"]), unsafe
        assert_problem(client.get("/v1/nothing", headers={"X-Request-ID": "r-404"}), 404)
        ids = access_ids(served, 7)
    assert len(ids) == 7 and len(set(ids)) == 7
    assert ids[:2] == ["lb-7f3a:42", made.headers["x-request-id"]] and ids[-1] == "r-404"
    assert all(HEX_ID.fullmatch(made) for made in ids[2:6])


def test_storage_failures_are_logged_with_the_request_id(moto_bucket: Bucket) -> None:
    dead = Bucket(f"http://127.0.0.1:{free_port()}", moto_bucket.name, moto_bucket.client)
    with serving(dead) as served:
        answer = served.client().post("/v1/uploads", json={"filename": "a", "size": 1},
                                      headers={"X-Request-ID": "trace-1"})
        assert answer.status_code == 502
        records = log_records(served)
    [failure] = [r for r in records if r.get("event") == "storage-failure"]
    assert (failure["request_id"], failure["level"], failure["code"]) == (
        "trace-1", "error", "EndpointConnectionError")


def test_an_unexpected_failure_answers_500_with_the_request_id_and_every_header(
        moto_bucket: Bucket) -> None:
    """A fault no handler foresaw still gets the usual answer: a problem document with
    the request's id, the security headers and ``no-store``, and one log line that names
    the request and holds the traceback."""
    with serving(moto_bucket) as served:
        def broken(*_: object, **__: object) -> None:
            raise RuntimeError("a bug in a route")

        served.app.state.service.list_objects = broken
        answer = served.client().get("/v1/objects", headers={"X-Request-ID": "trace-500"})
        records = log_records(served)
    problem = assert_problem(answer, 500, "internal-error")
    assert "a bug" not in str(problem)  # no detail of the fault reaches the caller
    assert answer.headers["x-request-id"] == "trace-500"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    [failure] = [r for r in records if r.get("event") == "unexpected-error"]
    assert failure["request_id"] == "trace-500" and failure["level"] == "error"
    assert "RuntimeError: a bug in a route" in failure.get("exc", "")


def test_no_credential_reaches_a_log_line_or_the_metrics(moto_bucket: Bucket) -> None:
    with serving(moto_bucket) as served:
        cookie = served.client().post("/v1/session").cookies["streamify_session"]
        browser = served.client(None, cookies={"streamify_session": cookie})
        key = "users/alice/secretive.bin"
        upload_id = browser.post("/s3/multipart", headers={"Origin": served.url}, json={
            "filename": "secretive.bin", "type": "video/mp4",
            "metadata": {"size": "5"}}).json()["uploadId"]
        assert browser.get(f"/s3/multipart/{upload_id}/1",
                           params={"key": key}).status_code == 200
        wrong = httpx.get(f"{served.url}/v1/uploads",
                          headers={"Authorization": "Bearer not-a-key-but-secret"})
        assert wrong.status_code == 401
        metrics = httpx.get(f"{served.url}/metrics").text
        lines = list(served.capture.lines)
    assert lines and all(json.loads(line) for line in lines)
    for secret in (TOKENS["alice"], cookie, COOKIE_SECRET, AWS_SECRET,
                   "not-a-key-but-secret", "X-Amz-Signature"):
        assert not [line for line in lines if secret in line], secret
        assert secret not in metrics

