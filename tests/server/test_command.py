"""``streamify serve``: the embedded default runs as a real process; bad settings say why."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from streamify import HttpControlPlane, upload
from streamify.server._command import serve

from tests.helpers import make_file
from tests.server._support import MiB

SERVE = [sys.executable, "-c", "from streamify.server._command import serve; serve()"]


def _read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """The ``name: value`` lines ``serve --local`` prints once it listens."""
    assert process.stdout is not None
    banner: dict[str, str] = {}
    while "Token" not in banner:
        line = process.stdout.readline()
        assert line, "serve exited before printing where it listens"
        name, _, value = line.partition(":")
        banner[name.strip()] = value.strip()
    return banner


@pytest.mark.timeout(120)
def test_serve_local_is_a_whole_working_system(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMIFY_", "AWS_"))}
    process = subprocess.Popen([*SERVE, "--local", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = _read_banner(process)
        api, token = banner["Streamify API"], banner["Token"]
        assert banner["Bucket"] == "streamify"
        assert banner["S3 endpoint"].startswith("http://127.0.0.1:")
        assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}

        source = make_file(tmp_path / "local.bin", 7 * MiB, seed=4)
        result = upload(source, "s3://streamify/local/local.bin",
                        control=HttpControlPlane(api, token=token),
                        state_dir=str(tmp_path / "state"), part_size="5MiB")
        assert (result.status, result.parts) == ("completed", 2)
        stored = httpx.get(f"{banner['S3 endpoint']}/streamify/local/local.bin").content
        assert hashlib.sha256(stored).digest() == hashlib.sha256(source.read_bytes()).digest()
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells why.
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "Finished server process" in log
    assert '"path":"/v1/uploads/' in log  # the JSON access log went to stderr
    assert token not in log and "X-Amz-Signature" not in log


def test_invalid_settings_are_reported_without_their_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("STREAMIFY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMIFY_BUCKET", "videos")
    monkeypatch.setenv("STREAMIFY_COOKIE_SECRET", "tiny-secret")
    result = CliRunner().invoke(serve, [])
    assert result.exit_code == 1
    assert "cookie_secret" in result.output and "tiny-secret" not in result.output

    local = CliRunner().invoke(serve, ["--local", "--workers", "2"])
    assert local.exit_code == 2 and "--local runs one worker" in local.output
