"""A ``streamify upload`` killed with SIGKILL half-way resumes from what S3 holds.

The process is really killed (no chance to save anything), and the rerun is the very same
command. A counting proxy between the CLI and radosgw tells exactly which part bytes had
left the process before it died, so "re-sends at most concurrency x part size" is measured,
not inferred.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.reals3._support import (
    MiB,
    cli_env,
    file_sha256,
    kill_when,
    object_sha256,
    run_cli,
    upload_command,
)
from tests.wireproxy import WireProxy

pytestmark = pytest.mark.reals3

PART = 8 * MiB
CONCURRENCY = 4


@pytest.fixture
def video(tmp_path: Path) -> Iterator[Path]:
    """A 512 MiB file, deleted after the test (pytest keeps tmp_path around)."""
    path = make_file(tmp_path / "video.mp4", 512 * MiB, seed=7)
    yield path
    path.unlink()


@pytest.fixture
def proxy(real_bucket: Bucket) -> Iterator[WireProxy]:
    counting = WireProxy(real_bucket.endpoint)
    yield counting
    counting.close()


def test_sigkill_at_half_then_rerun_resends_at_most_the_parts_in_flight(
        real_bucket: Bucket, video: Path, proxy: WireProxy, tmp_path: Path) -> None:
    size = video.stat().st_size
    key = "ingest/video.mp4"
    # --bwlimit makes the first run last about 8 s, so the kill lands near the middle.
    command = upload_command(video, real_bucket.url(key), proxy.url, "--part-size", "8MiB",
                             "--concurrency", str(CONCURRENCY), "--bwlimit", "64MiB")
    env = cli_env(tmp_path / "state")
    half = size // PART // 2

    killed = kill_when(command, env, real_bucket, key, lambda parts: len(parts) >= half)
    sent_before = proxy.part_bytes(killed.upload_id)
    run = run_cli(command, env)

    result = run.result
    assert result["status"] == "completed"
    assert (result["resumed"], result["restarted"]) == (True, False)
    assert result["upload_id"] == killed.upload_id
    total = proxy.part_bytes(killed.upload_id)
    sent_after = {n: total[n] - sent_before.get(n, 0) for n in total
                  if total[n] > sent_before.get(n, 0)}
    # The run's own accounting agrees with the wire, and nothing was sent twice by it.
    assert result["bytes_sent"] == sum(sent_after.values())
    assert result["bytes_sent"] + result["bytes_resumed"] == size
    # Every part S3 held after the kill was kept, none sent again.
    assert not set(sent_after) & set(killed.parts_after)
    assert result["bytes_resumed"] >= sum(killed.parts_after.values())
    assert result["bytes_resumed"] >= len(killed.parts_seen) * PART
    assert 0.4 * size <= result["bytes_resumed"] <= 0.75 * size

    # What had left the process before the kill and is sent again: the parts in flight.
    resent = sum(sent_after[n] for n in sent_after if sent_before.get(n, 0) > 0)
    lost = sum(count for n, count in sent_before.items() if n in sent_after)
    print(f"\nkilled with {len(killed.parts_after)} of {size // PART} parts in S3; "
          f"{sum(sent_before.values())} bytes had been sent; the rerun sent "
          f"{result['bytes_sent']} bytes, of which {resent} re-sent ({lost} bytes of cut "
          f"parts lost); bound {CONCURRENCY * PART}")
    assert resent <= CONCURRENCY * PART
    assert lost <= CONCURRENCY * PART
    assert object_sha256(real_bucket, key) == file_sha256(video)


def test_resume_with_the_local_state_deleted_finds_the_upload_by_listing(
        real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "clip.mov", 128 * MiB, seed=3)
    key = "clips/clip.mov"
    state = tmp_path / "state"
    command = upload_command(source, real_bucket.url(key), real_bucket.endpoint,
                             "--part-size", "8MiB", "--bwlimit", "32MiB")
    env = cli_env(state)

    killed = kill_when(command, env, real_bucket, key, lambda parts: len(parts) >= 8)
    assert any(state.iterdir())
    shutil.rmtree(state)
    result = run_cli(command, env).result

    assert result["status"] == "completed"
    assert (result["resumed"], result["restarted"]) == (True, False)
    assert result["upload_id"] == killed.upload_id
    assert result["bytes_resumed"] >= sum(killed.parts_after.values()) >= 8 * PART
    assert result["bytes_sent"] + result["bytes_resumed"] == source.stat().st_size
    assert object_sha256(real_bucket, key) == file_sha256(source)
    assert real_bucket.open_uploads() == []
