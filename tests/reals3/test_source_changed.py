"""A file that changed between two runs is never mixed into the upload it started.

Whether the local state remembers the upload (caught by the fingerprint) or was lost (the
upload is found by listing and its parts' MD5s do not match), the rerun stops with one
clear line naming the file and what to do, creates no object, and leaves the old upload
open so the user can abort it or restore the file and resume.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.reals3._support import (
    MiB,
    cli_env,
    kill_when,
    listed_parts,
    object_exists,
    open_upload_id,
    run_cli,
    upload_command,
)

pytestmark = pytest.mark.reals3

PART = 8 * MiB


def _damage(path: Path, offset: int) -> None:
    """Change a few bytes in place; the size stays the same."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        original = fh.read(16)
        fh.seek(offset)
        fh.write(bytes(b ^ 0x5A for b in original))


@pytest.mark.parametrize("state_kept", [True, False], ids=["state-kept", "state-deleted"])
def test_changed_source_is_refused_and_the_old_upload_left_open(
        real_bucket: Bucket, tmp_path: Path, state_kept: bool) -> None:
    source = make_file(tmp_path / "talk.mp4", 64 * MiB, seed=11)
    key = "talks/talk.mp4"
    state = tmp_path / "state"
    command = upload_command(source, real_bucket.url(key), real_bucket.endpoint,
                             "--part-size", "8MiB", "--bwlimit", "16MiB")
    env = cli_env(state)
    killed = kill_when(command, env, real_bucket, key,
                       lambda parts: 2 in parts and len(parts) >= 3)
    # Inside part 2, which S3 already holds: only its MD5 can tell.
    _damage(source, PART + 12345)
    if not state_kept:
        shutil.rmtree(state)

    run = run_cli(command, env)

    line = run.error_line
    assert run.returncode == 3  # SourceError
    assert str(source) in line
    assert real_bucket.url(key) in line
    assert f"streamify abort {real_bucket.url(key)}" in line
    assert not object_exists(real_bucket, key)
    assert open_upload_id(real_bucket, key) == killed.upload_id
    assert listed_parts(real_bucket, key, killed.upload_id) == killed.parts_after
