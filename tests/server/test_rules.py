"""The service's pure pieces: key rules, settings sources, session cookies. No servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from streamify.server import PrincipalSettings, ServiceSettings, hash_api_key, load_settings
from streamify.server._auth import Authenticator
from streamify.server._keys import KeyRejected, check_key, check_prefix, key_for_filename

from tests.server.conftest import COOKIE_SECRET

ALICE_HASH = hash_api_key("alice-key")


@pytest.mark.parametrize("key", ["a", "users/alice/clip.mp4", "é/ü/日本.mp4", "a..b/c",
                                 "x" * 1024, "é" * 512, "dir/.hidden", "a//b"])
def test_good_keys_pass(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(("key", "reason"), [
    ("", "empty"), ("x" * 1025, "1024 bytes"), ("é" * 513, "1024 bytes"),
    ("a/../b", "'..'"), ("..", "'..'"), ("a/./b", "'..'"), ("/a", "start with '/'"),
    ("a\x00b", "control"), ("a\rb", "control"), ("a\x85b", "control"), ("a\ud800", "control"),
    ("a\uffff", "noncharacter"), ("a\ufffe", "noncharacter"), ("a\ufdd0", "noncharacter"),
    ("a\U0010ffff", "noncharacter"),
    ("a/", "folder"),
])
def test_bad_keys_say_why(key: str, reason: str) -> None:
    with pytest.raises(KeyRejected, match=reason):
        check_key(key)


def test_a_prefix_may_be_empty_but_follows_the_same_rules() -> None:
    assert check_prefix("") == ""
    assert check_prefix("users/") == "users/"
    with pytest.raises(KeyRejected):
        check_prefix("../")


@pytest.mark.parametrize(("filename", "key"), [
    ("clip.mp4", "p/clip.mp4"),
    ("C:\\Users\\me\\clip.mp4", "p/clip.mp4"),
    ("../../etc/passwd", "p/passwd"),
    ("..", "p/upload"),
    ("", "p/upload"),
    ("a\x00\nb\uffff.txt", "p/ab.txt"),
    ("  spaced name.mov ", "p/spaced name.mov"),
    ("e\u0301t\u00e9.mp4", "p/\u00e9t\u00e9.mp4"),  # NFC
])
def test_filenames_become_keys_inside_the_prefix(filename: str, key: str) -> None:
    assert key_for_filename(filename, "p/") == key


def test_long_filenames_are_cut_on_a_character_boundary() -> None:
    key = key_for_filename("é" * 600, "p/")
    assert len(key.encode()) <= 1024 and key.startswith("p/é")
    check_key(key)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMIFY_BUCKET", "videos")
    monkeypatch.setenv("STREAMIFY_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("STREAMIFY_COOKIE_SECRET", COOKIE_SECRET)
    monkeypatch.setenv("STREAMIFY_URL_EXPIRY", "300")
    monkeypatch.setenv("STREAMIFY_PRINCIPALS", json.dumps([
        {"name": "alice", "key_sha256": ALICE_HASH, "prefix": "users/alice/"}]))
    settings = load_settings()
    assert (settings.bucket, settings.url_expiry) == ("videos", 300)
    assert settings.principals[0].prefix == "users/alice/"
    assert COOKIE_SECRET not in repr(settings)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_settings_come_from_a_file_under_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    path = tmp_path / f"streamify{suffix}"
    if suffix == ".toml":
        path.write_text(f'bucket = "from-file"\ncookie_secret = "{COOKIE_SECRET}"\n'
                        f'url_expiry = 120\n[[principals]]\nname = "alice"\n'
                        f'key_sha256 = "{ALICE_HASH}"\nprefix = "a/"\n')
    else:
        path.write_text(json.dumps({"bucket": "from-file", "cookie_secret": COOKIE_SECRET,
                                    "url_expiry": 120, "principals": [
                                        {"name": "alice", "key_sha256": ALICE_HASH,
                                         "prefix": "a/"}]}))
    monkeypatch.setenv("STREAMIFY_URL_EXPIRY", "60")
    settings = load_settings(path)
    assert settings.bucket == "from-file" and settings.principals[0].name == "alice"
    assert settings.url_expiry == 60  # the environment wins over the file
    monkeypatch.setenv("STREAMIFY_CONFIG_FILE", str(path))
    assert load_settings().bucket == "from-file"


@pytest.mark.parametrize(("principal", "message"), [
    ({"name": "a", "key_sha256": "not-a-hash"}, "key_sha256"),
    ({"name": "a", "key_sha256": ALICE_HASH, "prefix": "users"}, "end with '/'"),
    ({"name": "a", "key_sha256": ALICE_HASH, "prefix": "/users/"}, "'/'"),
    ({"name": "a b", "key_sha256": ALICE_HASH}, "name"),
])
def test_bad_principals_are_refused(principal: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PrincipalSettings(**principal)  # type: ignore[arg-type]


def test_settings_refuse_short_secrets_and_shared_keys() -> None:
    with pytest.raises(ValidationError, match="cookie_secret"):
        ServiceSettings(bucket="videos", cookie_secret=SecretStr("short"))
    twice = PrincipalSettings(name="a", key_sha256=ALICE_HASH)
    again = PrincipalSettings(name="b", key_sha256=ALICE_HASH)
    with pytest.raises(ValidationError, match="unique"):
        ServiceSettings(bucket="videos", cookie_secret=SecretStr(COOKIE_SECRET),
                        principals=(twice, again))


def test_session_cookies_expire_and_name_only_configured_principals() -> None:
    principal = PrincipalSettings(name="alice", key_sha256=ALICE_HASH, prefix="a/")
    settings = ServiceSettings(bucket="videos", cookie_secret=SecretStr(COOKIE_SECRET),
                               principals=(principal,), session_ttl=60)
    auth = Authenticator(settings)
    alice = auth.from_token("alice-key")
    assert alice is not None and alice.prefix == "a/"
    assert auth.from_token("alice-key ") is None
    cookie = auth.session_cookie(alice, now=1000)
    assert auth.from_cookie(cookie, now=1059) == alice
    assert auth.from_cookie(cookie, now=1061) is None
    other_secret = settings.model_copy(update={"cookie_secret": SecretStr("x" * 32)})
    assert Authenticator(other_secret).from_cookie(cookie, now=1000) is None
    removed = settings.model_copy(update={"principals": ()})
    same_secret = Authenticator(removed)
    assert same_secret.from_cookie(cookie, now=1000) is None


def test_new_api_keys_are_safe_on_a_command_line() -> None:
    from streamify.server._local import new_api_key

    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(k.startswith("stfy_") and len(k) > 40 for k in keys)


def test_a_session_cookie_is_revoked_by_rotating_the_key_it_was_minted_with() -> None:
    principal = PrincipalSettings(name="alice", key_sha256=ALICE_HASH, prefix="a/")
    settings = ServiceSettings(bucket="videos", cookie_secret=SecretStr(COOKIE_SECRET),
                               principals=(principal,))
    auth = Authenticator(settings)
    alice = auth.from_token("alice-key")
    assert alice is not None
    cookie = auth.session_cookie(alice, now=1000)
    assert auth.from_cookie(cookie, now=1001) == alice
    assert ALICE_HASH not in _claims(cookie).values()
    rotated = settings.model_copy(update={"principals": (principal.model_copy(
        update={"key_sha256": hash_api_key("alice-new-key")}),)})
    assert Authenticator(rotated).from_cookie(cookie, now=1001) is None
    # Stateless: another instance with the same settings accepts the same cookie.
    assert Authenticator(settings).from_cookie(cookie, now=1001) == alice


def _claims(cookie: str) -> dict[str, object]:
    import base64

    payload = cookie.partition(".")[0]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(
        payload + "=" * (-len(payload) % 4)))
    return claims


def test_the_rate_limiter_refills_and_says_when_to_come_back() -> None:
    from streamify.server._limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(rate=10, burst=20, clock=lambda: now[0])
    assert limiter.take("alice", 20) == 0
    assert limiter.take("alice") == 1  # empty: one token comes back in 0.1 s
    assert limiter.take("bob", 5) == 0  # buckets are per principal
    now[0] = 0.5
    assert limiter.take("alice", 5) == 0
    assert limiter.take("alice", 15) == 2  # nothing taken; 15 tokens need 1.5 s
    now[0] = 2.0
    assert limiter.take("alice", 15) == 0
    now[0] = 100.0
    assert limiter.take("alice", 1000) == 0  # over the burst: passes once full
    assert limiter.take("alice", 1000) == 2


def test_trusted_proxies_are_addresses() -> None:
    ServiceSettings(bucket="videos", cookie_secret=SecretStr(COOKIE_SECRET),
                    trusted_proxies=("10.0.0.0/8", "127.0.0.1", "::1"))
    with pytest.raises(ValidationError, match="not an IP address"):
        ServiceSettings(bucket="videos", cookie_secret=SecretStr(COOKIE_SECRET),
                        trusted_proxies=("*",))
