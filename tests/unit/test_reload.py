"""``LivePrincipals`` looks at its file at most once a ``reload_interval`` (a fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamify.server import ServiceSettings, hash_api_key, load_settings
from streamify.server._reload import LivePrincipals


def _config(path: Path, key: str) -> None:
    path.write_text(f'bucket = "bucket"\ncookie_secret = "{"s" * 16}"\n'
                    f'reload_interval = 5\n\n[[principals]]\nname = "alice"\n'
                    f'key_sha256 = "{hash_api_key(key)}"\n')


def test_the_file_is_read_again_only_once_an_interval(tmp_path: Path) -> None:
    config = tmp_path / "streamify.toml"
    _config(config, "first-key")
    now = [100.0]
    live = LivePrincipals(load_settings(config), clock=lambda: now[0])
    first = live.current()
    _config(config, "second-key")
    now[0] += 4.9
    assert live.current() is first  # not looked at yet
    now[0] += 0.1
    assert live.current()[0].key_sha256 == hash_api_key("second-key")
    _config(config, "third-key")
    now[0] += 4.9
    assert live.current()[0].key_sha256 == hash_api_key("second-key")


def test_settings_made_in_code_have_no_file_and_never_change(tmp_path: Path) -> None:
    settings = ServiceSettings(bucket="bucket", cookie_secret="s" * 16)  # type: ignore[arg-type]
    now = [0.0]
    live = LivePrincipals(settings, clock=lambda: now[0])
    now[0] += 3600
    assert live.current() == ()


def test_worker_processes_follow_the_file_named_in_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `streamify serve --workers N` hands each worker the file through the environment.
    config = tmp_path / "streamify.toml"
    _config(config, "first-key")
    monkeypatch.setenv("STREAMIFY_CONFIG_FILE", str(config))
    now = [0.0]
    live = LivePrincipals(load_settings(), clock=lambda: now[0])
    _config(config, "second-key")
    now[0] += 5
    assert live.current()[0].key_sha256 == hash_api_key("second-key")
