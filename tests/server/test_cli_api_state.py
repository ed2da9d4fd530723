"""``streamify status`` and ``resume`` of an upload made through the API service: the
token goes to the service the command is pointed at (``STREAMIFY_API_URL`` or ``--api``),
or, with ``--trust-state-endpoint``, to the one the resume state names. The service runs
in a real uvicorn on loopback in front of moto."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import streamify

from tests.helpers import make_file
from tests.reals3._support import cli_env
from tests.server.conftest import TOKENS, Api

MiB = 1024 * 1024


def _paused_through_the_service(api: Api, path: Path, state_dir: Path) -> str:
    """Upload ``path`` through the service, pausing after its first part; its key."""
    key = api.key("alice", "v.bin")
    uploader = streamify.Uploader(
        path, api.bucket.url(key),
        control=streamify.HttpControlPlane(api.url, token=TOKENS["alice"]),
        config=streamify.UploadConfig(part_size=5 * MiB, concurrency=1),
        state=streamify.StateStore(state_dir))

    def pause_after_a_part(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone):
            uploader.pause()

    uploader.subscribe(pause_after_a_part)
    try:
        assert uploader.run().status == "paused"
    finally:
        uploader.close()
    return key


def _streamify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamify", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("pointed", ["configured", "trusted"])
def test_status_and_resume_go_back_to_the_service(api: Api, tmp_path: Path,
                                                  pointed: str) -> None:
    path = make_file(tmp_path / "v.bin", 12 * MiB)
    key = _paused_through_the_service(api, path, tmp_path / "state")
    [state] = streamify.StateStore(tmp_path / "state").all()
    assert state.api_url == api.url

    env = cli_env(tmp_path / "state", STREAMIFY_TOKEN=TOKENS["alice"])
    if pointed == "configured":
        env["STREAMIFY_API_URL"] = api.url
        trust: tuple[str, ...] = ()
    else:
        trust = ("--trust-state-endpoint",)
    status = _streamify("status", *trust, env=env)
    assert status.returncode == 0, status.stderr
    assert f"via {api.url}" in status.stdout
    assert "5.0 MiB of 12.0 MiB in S3" in status.stdout

    resume = _streamify("resume", "--json", *trust, env=env)
    assert resume.returncode == 0, resume.stderr
    result = json.loads(resume.stdout)
    assert result["resumed"] is True and result["bytes_resumed"] == 5 * MiB
    assert api.bucket.read(key) == path.read_bytes()
    assert streamify.StateStore(tmp_path / "state").all() == []


def test_resume_through_the_service_without_a_token_says_which_is_missing(
        api: Api, tmp_path: Path) -> None:
    _paused_through_the_service(api, make_file(tmp_path / "v.bin", 12 * MiB),
                                tmp_path / "state")
    resume = _streamify("resume", env=cli_env(tmp_path / "state", STREAMIFY_API_URL=api.url))
    assert resume.returncode == 2
    assert resume.stderr.strip() == (
        f"streamify: error: the API service at {api.url} needs a token: pass --token or "
        "set STREAMIFY_TOKEN")
    assert len(api.bucket.open_uploads()) == 1
