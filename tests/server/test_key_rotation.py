"""Keys and principals change without a restart: two replicas (two real uvicorn servers on
loopback) read one config file, and every change to it is in force on both within
``reload_interval``; a session cookie follows the key it was minted with.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from streamify.server import create_app, hash_api_key, load_settings, serve_in_thread
from streamify.server._reload import CONFIG_LOGGER

from tests.conftest import Bucket
from tests.server._support import MiB, put
from tests.server.conftest import COOKIE_SECRET, PREFIXES, TOKENS, running_api

INTERVAL = 0.2
# The slack a loaded two-core machine may need beyond the interval to answer.
SLACK = 1.5
NEW_ALICE = "alice-key-rotated-0123456789"


def _toml(value: Any) -> str:
    return json.dumps(value)  # a JSON string or number is a TOML one


def config_text(store: Bucket, keys: dict[str, str], *,
                principals: dict[str, dict[str, Any]] | None = None, **extra: Any) -> str:
    """A config file for ``store`` whose principals hold ``keys`` (name: API key), with
    the fields in ``principals`` (name: fields) beside; ``extra``, more settings (or other
    values)."""
    lines = [f"{name} = {_toml(value)}" for name, value in {
        "bucket": store.name, "s3_endpoint_url": store.endpoint, "region": "us-east-1",
        "cookie_secret": COOKIE_SECRET, "reload_interval": INTERVAL, **extra}.items()]
    for name, key in keys.items():
        fields = {"key_sha256": hash_api_key(key), "prefix": PREFIXES[name],
                  **(principals or {}).get(name, {})}
        lines += ["", "[[principals]]", f"name = {_toml(name)}",
                  *(f"{field} = {_toml(value)}" for field, value in fields.items())]
    return "\n".join(lines) + "\n"


def replace_file(path: Path, text: str, *, keep_mtime: bool = False) -> None:
    """Swap ``path`` for ``text`` at once, as a mounted secret or config map changes;
    ``keep_mtime``: with the old modification time, so only the content tells."""
    before = path.stat()
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@dataclass
class Replicas:
    urls: list[str]
    config: Path
    bucket: Bucket

    def get(self, url: str, *, token: str | None = None,
            cookie: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        cookies = {"streamify_session": cookie} if cookie else {}
        return httpx.get(f"{url}/v1/limits", headers=headers, cookies=cookies, timeout=30)

    def until(self, settled: Callable[[str], bool]) -> float:
        """Seconds until ``settled`` holds on every replica; fails past the interval and
        its slack."""
        start = time.monotonic()
        pending = list(self.urls)
        while True:
            pending = [url for url in pending if not settled(url)]
            elapsed = time.monotonic() - start
            if not pending:
                return elapsed
            assert elapsed < INTERVAL + SLACK, f"{pending} still on the old principals"
            time.sleep(0.02)


@contextlib.contextmanager
def replicas_of(config: Path, bucket: Bucket, count: int = 2) -> Iterator[Replicas]:
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve_in_thread(create_app(load_settings(config))))
                for _ in range(count)]
        yield Replicas(urls, config, bucket)


@pytest.fixture
def replicas(moto_bucket: Bucket, tmp_path: Path,
             caplog: pytest.LogCaptureFixture) -> Iterator[Replicas]:
    caplog.set_level(logging.INFO)
    config = tmp_path / "streamify.toml"
    config.write_text(config_text(moto_bucket, TOKENS))
    with replicas_of(config, moto_bucket) as running:
        yield running
    # Whatever a test did, no key, hash of a key or cookie secret reached a log line.
    secrets = [*TOKENS.values(), NEW_ALICE, COOKIE_SECRET,
               *(hash_api_key(k) for k in (*TOKENS.values(), NEW_ALICE))]
    leaked = [s for s in secrets if s in caplog.text]
    assert not leaked, "a secret was logged"


def session(url: str, token: str) -> str:
    opened = httpx.post(f"{url}/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert opened.status_code == 204, opened.text
    return opened.cookies["streamify_session"]


def config_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == CONFIG_LOGGER and r.levelno == level]


def test_a_rotated_key_and_its_cookies_are_refused_on_both_replicas(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    first, second = replicas.urls
    alice_cookie = session(first, TOKENS["alice"])
    bob_cookie = session(second, TOKENS["bob"])
    for url in replicas.urls:
        assert replicas.get(url, cookie=alice_cookie).status_code == 200
    # An upload begun with the old key: its state is in storage, not in the key.
    key = PREFIXES["alice"] + "rotated.bin"
    old = {"Authorization": f"Bearer {TOKENS['alice']}"}
    upload_id = httpx.post(f"{first}/v1/uploads", headers=old,
                           json={"key": key, "size": 6 * MiB}).json()["upload_id"]
    url = httpx.post(f"{first}/v1/uploads/{upload_id}/sign", headers=old, json={
        "key": key, "parts": [{"number": 1}]}).json()["parts"][0]["url"]
    assert put(url, b"a" * (5 * MiB)).status_code == 200

    # Same size, same modification time: only the content says it changed.
    replace_file(replicas.config, config_text(
        replicas.bucket, {**TOKENS, "alice": NEW_ALICE}), keep_mtime=True)
    took = replicas.until(lambda url: replicas.get(url, token=TOKENS["alice"])
                          .status_code == 401)
    print(f"old key refused on both replicas {took:.2f} s after the change "
          f"(reload_interval {INTERVAL} s)")
    for url in replicas.urls:
        assert replicas.get(url, token=NEW_ALICE).status_code == 200
        assert replicas.get(url, cookie=alice_cookie).status_code == 401
        # Bob's key did not change: his key and his session go on.
        assert replicas.get(url, token=TOKENS["bob"]).status_code == 200
        assert replicas.get(url, cookie=bob_cookie).status_code == 200
    # A cookie minted with the new key works on both.
    fresh_cookie = session(second, NEW_ALICE)
    assert all(replicas.get(url, cookie=fresh_cookie).status_code == 200
               for url in replicas.urls)

    # The upload goes on with the new key, on the other replica.
    new = {"Authorization": f"Bearer {NEW_ALICE}"}
    url = httpx.post(f"{second}/v1/uploads/{upload_id}/sign", headers=new, json={
        "key": key, "parts": [{"number": 2}]}).json()["parts"][0]["url"]
    assert put(url, b"b" * MiB).status_code == 200
    parts = httpx.get(f"{second}/v1/uploads/{upload_id}/parts", headers=new,
                      params={"key": key}).json()["parts"]
    done = httpx.post(f"{second}/v1/uploads/{upload_id}/complete", headers=new, json={
        "key": key, "parts": [{"number": p["number"], "etag": p["etag"]} for p in parts]})
    assert done.status_code == 200, done.text
    assert replicas.bucket.read(key) == b"a" * (5 * MiB) + b"b" * MiB
    assert config_lines(caplog, logging.INFO) == [
        f"principals reloaded from {replicas.config}: 2 in force; changed alice"] * 2


def test_a_changed_principal_is_served_as_changed_and_a_removed_one_refused(
        replicas: Replicas) -> None:
    bob_cookie = session(replicas.urls[0], TOKENS["bob"])
    alice_cookie = session(replicas.urls[0], TOKENS["alice"])
    # Same keys, another prefix and size limit: her key and her session go on with them.
    moved = {"prefix": "teams/video/", "max_object_size": 5 * MiB}
    replace_file(replicas.config, config_text(replicas.bucket, TOKENS,
                                              principals={"alice": moved}))

    def limits(url: str, **credentials: str) -> dict[str, Any]:
        answer = replicas.get(url, **credentials)
        assert answer.status_code == 200, answer.text
        return {field: answer.json()[field] for field in moved}

    replicas.until(lambda url: limits(url, token=TOKENS["alice"]) == moved)
    assert all(limits(url, cookie=alice_cookie) == moved for url in replicas.urls)
    refused = httpx.post(f"{replicas.urls[1]}/v1/uploads", json={
        "key": PREFIXES["alice"] + "old-prefix.bin", "size": MiB},
        headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert refused.status_code == 403, refused.text

    replace_file(replicas.config, config_text(replicas.bucket, {"alice": TOKENS["alice"]},
                                              principals={"alice": moved}))
    replicas.until(lambda url: replicas.get(url, token=TOKENS["bob"]).status_code == 401)
    for url in replicas.urls:
        assert replicas.get(url, cookie=bob_cookie).status_code == 401
        assert limits(url, cookie=alice_cookie) == moved


def test_a_malformed_file_keeps_the_principals_and_says_so_once(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    def still_served() -> None:
        """Several intervals of requests: the old principals answer all along."""
        deadline = time.monotonic() + 4 * INTERVAL
        while time.monotonic() < deadline:
            for url in replicas.urls:
                assert replicas.get(url, token=TOKENS["alice"]).status_code == 200
            time.sleep(0.02)

    good = replicas.config.read_text()
    replace_file(replicas.config, good + "\n[[principals]\nname = \n")
    still_served()
    # A valid TOML file with a bad value, which must not be quoted: it may be a secret.
    bad_value = "this-value-may-be-a-secret"
    replace_file(replicas.config, good.replace(hash_api_key(TOKENS["bob"]), bad_value, 1))
    still_served()
    replace_file(replicas.config, "")
    still_served()
    replicas.config.unlink()
    still_served()

    errors = config_lines(caplog, logging.ERROR)
    assert len(errors) == 4 * 2, errors  # one line per bad version, per replica
    assert all(line.startswith(f"principals not reloaded from {replicas.config}: ")
               and "the 2 principals loaded before stay in force" in line
               for line in errors), errors
    for problem in ("(at line 17, column 13)",  # where the syntax broke
                    "principals.1.key_sha256: String should match pattern",
                    "bucket: Field required",
                    "the file cannot be read (No such file or directory)"):
        assert sum(problem in line for line in errors) == 2, (problem, errors)
    assert bad_value not in caplog.text

    # It keeps looking: a good file again is taken up.
    replicas.config.write_text(config_text(replicas.bucket, {**TOKENS, "alice": NEW_ALICE}))
    replicas.until(lambda url: replicas.get(url, token=NEW_ALICE).status_code == 200)


def test_a_principals_file_is_followed_and_other_settings_wait_for_a_restart(
        moto_bucket: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    principals = tmp_path / "principals.json"

    def write_principals(keys: dict[str, str]) -> None:
        replace_file(principals, json.dumps({"principals": [
            {"name": name, "key_sha256": hash_api_key(key), "prefix": PREFIXES[name]}
            for name, key in keys.items()]}))

    principals.write_text("{}")
    write_principals(TOKENS)
    config = tmp_path / "streamify.toml"
    config.write_text(config_text(moto_bucket, {}, principals_file=str(principals)))
    with replicas_of(config, moto_bucket) as running:
        write_principals({**TOKENS, "alice": NEW_ALICE})
        running.until(lambda url: running.get(url, token=NEW_ALICE).status_code == 200)
        assert running.get(running.urls[0], token=TOKENS["alice"]).status_code == 401

    # Principals in the config file, reloaded; a changed bucket waits for a restart.
    config.write_text(config_text(moto_bucket, TOKENS))
    with replicas_of(config, moto_bucket, count=1) as running:
        replace_file(config, config_text(moto_bucket, {"alice": TOKENS["alice"]},
                                         bucket="another-bucket", session_ttl=600))
        running.until(lambda url: running.get(url, token=TOKENS["bob"]).status_code == 401)
        assert running.get(running.urls[0], token=TOKENS["alice"]).status_code == 200
    assert config_lines(caplog, logging.WARNING) == [
        f"{config} changes bucket, session_ttl: only the principals are reloaded, the rest "
        "takes effect on restart"]


def test_both_principals_and_a_principals_file_is_refused(
        moto_bucket: Bucket, tmp_path: Path) -> None:
    principals = tmp_path / "principals.toml"
    principals.write_text("principals = []\n")
    config = tmp_path / "streamify.toml"
    config.write_text(config_text(moto_bucket, TOKENS, principals_file=str(principals)))
    with pytest.raises(ValueError, match="give principals or principals_file, not both"):
        load_settings(config)


def test_a_changed_cookie_secret_keeps_sessions_and_companion_uploads_while_listed(
        moto_bucket: Bucket) -> None:
    new_secret = "the-new-cookie-secret-0123456789"
    with running_api(moto_bucket) as before:
        cookie = session(before.url, TOKENS["alice"])
        created = before.client().post("/s3/multipart", json={
            "filename": "across.mp4", "type": "video/mp4", "metadata": {"size": 6 * MiB}})
        assert created.status_code == 200, created.text
        upload_id, key = created.json()["uploadId"], created.json()["key"]
    for previous, status in (((SecretStr(COOKIE_SECRET),), 200), ((), 401)):
        with running_api(moto_bucket, cookie_secret=SecretStr(new_secret),
                         previous_cookie_secrets=previous) as after:
            assert after.client(None, cookies={"streamify_session": cookie}).get(
                "/v1/limits").status_code == status
            # The id carries the declared size under the secret: read with the old one,
            # or refused as an upload this service did not make.
            signed = after.client().get(f"/s3/multipart/{upload_id}/1", params={"key": key})
            assert signed.status_code == (200 if previous else 404), signed.text
            # New cookies are signed with the new secret only.
            fresh = session(after.url, TOKENS["alice"])
            with running_api(moto_bucket) as old_only:
                assert old_only.client(None, cookies={"streamify_session": fresh}).get(
                    "/v1/limits").status_code == 401
