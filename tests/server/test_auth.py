"""Who may call what: bearer keys, the browser session cookie, ownership by prefix, logs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from streamify.server import hash_api_key

from tests.conftest import Bucket
from tests.server._support import MiB, assert_companion_error, assert_problem, put
from tests.server.conftest import TOKENS, Api, running_api, service_settings


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Bearer",
                                           f"Basic {TOKENS['alice']}", TOKENS["alice"]])
def test_missing_or_bad_credentials_are_401(api: Api, authorization: str | None) -> None:
    client = api.client(None)
    headers = {"Authorization": authorization} if authorization is not None else {}
    native = client.get("/v1/uploads", headers=headers)
    assert_problem(native, 401, "unauthorized")
    assert native.headers["WWW-Authenticate"] == "Bearer"
    assert_companion_error(client.post("/s3/multipart", json={"filename": "a"},
                                       headers=headers), 401)
    assert_problem(client.post("/v1/session", headers=headers), 401)


def test_a_session_cookie_lets_a_browser_page_use_the_companion_routes(api: Api) -> None:
    opened = api.client().post("/v1/session")
    assert opened.status_code == 204
    set_cookie = opened.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
    assert {"streamify_session", "httponly", "path", "max-age", "samesite"} <= attributes
    assert "samesite=strict" in set_cookie.lower()
    cookie = opened.cookies["streamify_session"]
    assert TOKENS["alice"] not in cookie

    browser = api.client(None, cookies={"streamify_session": cookie})
    created = browser.post("/s3/multipart", json={"filename": "from-page.mp4", "type": "",
                                                  "metadata": {"size": 1}})
    assert created.status_code == 200, created.text
    assert created.json()["key"] == "users/alice/from-page.mp4"
    assert browser.get("/v1/uploads").status_code == 200
    # The cookie cannot mint another cookie: only an API key can.
    assert_problem(browser.post("/v1/session"), 401)

    payload, _, signature = cookie.partition(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for forged in (f"{forged_payload}.{signature}", f"{payload}.{signature[::-1]}", "x",
                   f"{payload}."):
        intruder = api.client(None, cookies={"streamify_session": forged})
        assert_companion_error(intruder.post("/s3/multipart", json={"filename": "a"}), 401)

    closed = browser.delete("/v1/session")
    assert closed.status_code == 204
    assert 'streamify_session=""' in closed.headers["set-cookie"]


def test_one_principal_cannot_touch_another_principals_upload(api: Api) -> None:
    bob, alice = api.client("bob"), api.client("alice")
    bob_key = api.key("bob", "secret.bin")
    created = bob.post("/v1/uploads", json={"key": bob_key, "size": 6 * MiB})
    upload_id = created.json()["upload_id"]
    signed = bob.post(f"/v1/uploads/{upload_id}/sign", json={"key": bob_key, "parts": [
        {"number": 1}]}).json()["parts"][0]
    etag = put(signed["url"], b"b" * (5 * MiB)).headers["ETag"]
    mine = api.key("alice", "secret.bin")

    # Naming bob's key: refused by prefix. Naming her own key with bob's upload id: that
    # upload does not exist for her key.
    for key, status in ((bob_key, 403), (mine, 404)):
        assert_problem(alice.post(f"/v1/uploads/{upload_id}/sign", json={
            "key": key, "parts": [{"number": 2}]}), status)
        assert_problem(alice.get(f"/v1/uploads/{upload_id}/parts", params={"key": key}),
                       status)
        assert_problem(alice.post(f"/v1/uploads/{upload_id}/complete", json={
            "key": key, "parts": [{"number": 1, "etag": etag}]}), status)
        assert_problem(alice.delete(f"/v1/uploads/{upload_id}", params={"key": key}), status)
        assert_problem(alice.get("/v1/objects", params={"key": key}), status)
        assert_companion_error(alice.get(f"/s3/multipart/{upload_id}/2", params={"key": key}),
                               status)
        assert_companion_error(alice.get(f"/s3/multipart/{upload_id}/batch",
                                         params={"key": key, "partNumbers": "2"}), status)
        assert_companion_error(alice.get(f"/s3/multipart/{upload_id}", params={"key": key}),
                               status)
        assert_companion_error(alice.post(f"/s3/multipart/{upload_id}/complete",
                                          params={"key": key},
                                          json={"parts": [{"PartNumber": 1, "ETag": etag}]}),
                               status)
        assert_companion_error(alice.delete(f"/s3/multipart/{upload_id}", params={"key": key}),
                               status)
    assert_problem(alice.get("/v1/uploads", params={"prefix": "users/bob/"}), 403)
    assert_problem(alice.get("/v1/uploads", params={"prefix": "users/"}), 403)
    assert alice.get("/v1/uploads").json() == {"uploads": []}

    # Bob's upload is untouched: still open, its part still there.
    assert [u["UploadId"] for u in api.bucket.open_uploads()] == [upload_id]
    parts = bob.get(f"/v1/uploads/{upload_id}/parts", params={"key": bob_key}).json()["parts"]
    assert [(p["number"], p["size"]) for p in parts] == [(1, 5 * MiB)]


def test_the_logs_hold_no_secrets(api: Api) -> None:
    alice = api.client()
    cookie = alice.post("/v1/session").cookies["streamify_session"]
    key = api.key("alice", "logged.bin")
    browser = api.client(None, cookies={"streamify_session": cookie})
    upload_id = browser.post("/s3/multipart", json={
        "filename": "logged.bin", "metadata": {"size": 5}}).json()["uploadId"]
    signed = alice.post(f"/v1/uploads/{upload_id}/sign", json={"key": key, "parts": [
        {"number": 1, "md5": "XUFAKrxLKna5cZ2REBfFkg=="}]}).json()["parts"][0]
    url = browser.get(f"/s3/multipart/{upload_id}/1", params={"key": key}).json()["url"]
    params = httpx.get(api.url + "/v1/uploads", headers={"Authorization": "Bearer bad-key"})
    assert params.status_code == 401

    expected = {
        ("POST", "/v1/session", 204, "alice"),
        ("POST", "/s3/multipart", 200, "alice"),
        ("POST", f"/v1/uploads/{upload_id}/sign", 200, "alice"),
        ("GET", f"/s3/multipart/{upload_id}/1", 200, "alice"),
        ("GET", "/v1/uploads", 401, None)}
    # The access line is written once the answer has gone out, so the client can be first.
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in api.log.splitlines() if line.startswith("{")]
        logged = {(line["method"], line["path"], line["status"], line["principal"])
                  for line in lines}
        if logged >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logged >= expected
    signatures = [parse_qs(urlsplit(u).query)["X-Amz-Signature"][0]
                  for u in (signed["url"], url)]
    for secret in (TOKENS["alice"], "bad-key", cookie, cookie.partition(".")[2], *signatures,
                   api.settings.cookie_secret.get_secret_value()):
        assert secret not in api.log
    assert not re.search(r"(?i)x-amz-signature|authorization|bearer", api.log)


def test_browser_pages_are_served_same_origin_under_ui(moto_bucket: Bucket,
                                                       tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>uploader</h1>")
    (tmp_path / "app.js").write_text("export const ok = true;")
    with running_api(moto_bucket, static_dir=tmp_path) as api:
        page = api.client(None)
        assert page.get("/ui/").text == "<h1>uploader</h1>"
        script = page.get("/ui/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert page.get("/ui/missing.js").status_code == 404
        (tmp_path.parent / "outside.txt").write_text("not served")
        assert page.get("/ui/%2e%2e/outside.txt").status_code == 404


def _session(api: Api, **headers: str) -> httpx.Response:
    opened = api.client().post("/v1/session", headers=headers)
    assert opened.status_code == 204, opened.text
    return opened


def test_rotating_a_key_revokes_the_sessions_minted_with_it(moto_bucket: Bucket) -> None:
    settings = service_settings(moto_bucket)
    with running_api(moto_bucket) as api:
        cookie = _session(api).cookies["streamify_session"]
    rotated = settings.principals[0].model_copy(
        update={"key_sha256": hash_api_key("alice-rotated-key-0123456789")})
    with running_api(moto_bucket) as same, running_api(
            moto_bucket, principals=(rotated, *settings.principals[1:])) as after:
        # Stateless: another instance with the same keys accepts the cookie...
        assert same.client(None, cookies={"streamify_session": cookie}).get(
            "/v1/uploads").status_code == 200
        # ...and once the key is rotated, no instance does.
        assert_problem(after.client(None, cookies={"streamify_session": cookie}).get(
            "/v1/uploads"), 401, "unauthorized")


def test_logout_removes_the_cookie_from_the_browser_only(api: Api) -> None:
    """As documented: the service keeps no session state, so logout expires the cookie in
    the browser; a copy taken before stays valid until it expires or the key rotates."""
    cookie = _session(api).cookies["streamify_session"]
    browser = api.client(None, cookies={"streamify_session": cookie})
    closed = browser.delete("/v1/session")
    assert closed.status_code == 204
    removal = closed.headers["set-cookie"].lower()
    assert "max-age=0" in removal and 'streamify_session=""' in removal
    copy = api.client(None, cookies={"streamify_session": cookie})
    assert copy.get("/v1/uploads").status_code == 200


def test_session_cookies_are_secure_over_https_and_by_setting(moto_bucket: Bucket) -> None:
    https = {"X-Forwarded-Proto": "https"}
    with running_api(moto_bucket) as api:  # no trusted proxy: the header is ignored
        assert "secure" not in _attributes(_session(api, **https))
    with running_api(moto_bucket, trusted_proxies=("127.0.0.1",)) as api:
        assert "secure" in _attributes(_session(api, **https))
        assert "secure" not in _attributes(_session(api))
    with running_api(moto_bucket, cookie_secure=True) as api:
        assert "secure" in _attributes(_session(api))


def _attributes(response: httpx.Response) -> set[str]:
    return {a.strip().split("=")[0].lower() for a in response.headers["set-cookie"].split(";")}


def _logged_clients(api: Api) -> list[str]:
    # The access line is written once the answer has gone out, so the client can be first.
    deadline = time.monotonic() + 5
    while True:
        clients = [json.loads(line)["client"] for line in api.log.splitlines()
                   if line.startswith("{") and '"/healthz"' in line]
        if clients or time.monotonic() > deadline:
            return clients
        time.sleep(0.05)


def test_forwarded_for_is_trusted_only_from_configured_proxies(moto_bucket: Bucket) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    with running_api(moto_bucket) as api:
        assert api.client(None).get("/healthz", headers=forwarded).status_code == 200
        assert _logged_clients(api) == ["127.0.0.1"]
    with running_api(moto_bucket, trusted_proxies=("127.0.0.0/8",)) as api:
        assert api.client(None).get("/healthz", headers=forwarded).status_code == 200
        assert _logged_clients(api) == ["203.0.113.9"]
    with running_api(moto_bucket, trusted_proxies=("10.0.0.1",)) as api:
        assert api.client(None).get("/healthz", headers=forwarded).status_code == 200
        assert _logged_clients(api) == ["127.0.0.1"]


@pytest.mark.parametrize(("headers", "allowed"), [
    ({}, True),  # not a browser page
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "{own}"}, True),
    ({"Origin": "{own}", "Sec-Fetch-Site": "same-origin"}, True),
    ({"Sec-Fetch-Site": "cross-site"}, False),
    ({"Sec-Fetch-Site": "same-site"}, False),
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "null"}, False),
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, False),
])
def test_cookie_requests_that_change_state_must_come_from_the_service_pages(
        api: Api, headers: dict[str, str], allowed: bool) -> None:
    cookie = _session(api).cookies["streamify_session"]
    browser = api.client(None, cookies={"streamify_session": cookie})
    sent = {name: value.format(own=api.url) for name, value in headers.items()}
    created = browser.post("/s3/multipart", json={"filename": "page.mp4",
                                                  "metadata": {"size": 1}}, headers=sent)
    native = browser.post("/v1/uploads", json={"filename": "page.mp4", "size": 1},
                          headers=sent)
    if allowed:
        assert (created.status_code, native.status_code) == (200, 200), created.text
    else:
        assert "own pages" in assert_companion_error(created, 403)
        assert_problem(native, 403, "cross-origin")
        assert api.bucket.open_uploads() == []
    # Reading is never refused for its origin; a bearer key is never checked for it.
    assert browser.get("/v1/uploads", headers=sent).status_code == 200
    assert api.client().post("/v1/uploads", json={"filename": "key.mp4", "size": 1},
                             headers=sent).status_code == 200
