"""``streamify upload --api URL --token T``: the CLI through the service, killed and resumed.

The service runs in a real uvicorn on loopback in front of moto, or of Ceph radosgw for the
``reals3`` case; the CLI is a separate process that is SIGKILLed at about half.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import make_file
from tests.reals3._support import file_sha256, kill_when, object_sha256, run_cli
from tests.server.conftest import TOKENS, Api

MiB = 1024 * 1024
PART = 8 * MiB
CONCURRENCY = 4


@pytest.mark.parametrize("server", [
    "api", pytest.param("real_api", marks=pytest.mark.reals3)])
def test_cli_through_the_service_is_killed_and_resumes(
        server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    running: Api = request.getfixturevalue(server)
    size = 96 * MiB
    path = make_file(tmp_path / "v.mp4", size)
    key = running.key("alice", "v.mp4")
    env = {"STREAMIFY_STATE_DIR": str(tmp_path / "state"), "STREAMIFY_TOKEN": TOKENS["alice"],
           "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "streamify", "upload", str(path),
               running.bucket.url(key), "--api", running.url, "--json", "--no-progress",
               "--part-size", "8MiB", "--concurrency", str(CONCURRENCY)]
    parts_total = size // PART
    killed = kill_when([*command, "--bwlimit", "24MiB"], env, running.bucket, key,
                       lambda parts: len(parts) >= parts_total // 2)

    rerun = run_cli(command, env).result
    assert rerun["resumed"] is True
    assert rerun["upload_id"] == killed.upload_id
    assert rerun["bytes_resumed"] >= sum(killed.parts_seen.values())
    # What was sent before the kill and sent again: at most the parts that were in flight.
    assert sum(killed.parts_after.values()) - rerun["bytes_resumed"] <= CONCURRENCY * PART
    assert rerun["bytes_sent"] == size - rerun["bytes_resumed"]
    assert object_sha256(running.bucket, key) == file_sha256(path)
    assert running.bucket.open_uploads() == []
    assert TOKENS["alice"] not in running.log
