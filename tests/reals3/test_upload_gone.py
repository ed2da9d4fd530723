"""The open upload was aborted behind our back (a lifecycle rule, an admin, another tool).

The resume state still names it; S3 no longer has it (radosgw answers ListParts with
NoSuchKey, AWS with NoSuchUpload). ``--on-upload-gone restart`` (the default) starts a
fresh upload and says so; ``--on-upload-gone fail`` stops with one clear line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.reals3._support import (
    Killed,
    MiB,
    cli_env,
    file_sha256,
    kill_when,
    object_exists,
    object_sha256,
    run_cli,
    upload_command,
)

pytestmark = pytest.mark.reals3


def _start_kill_and_abort(bucket: Bucket, key: str, command: list[str],
                          env: dict[str, str]) -> Killed:
    killed = kill_when(command, env, bucket, key, lambda parts: len(parts) >= 3)
    bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=key,
                                         UploadId=killed.upload_id)
    assert bucket.open_uploads() == []
    return killed


def test_gone_upload_is_restarted_by_default(real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "match.mkv", 64 * MiB, seed=5)
    key = "sport/match.mkv"
    command = upload_command(source, real_bucket.url(key), real_bucket.endpoint,
                             "--part-size", "8MiB", "--bwlimit", "16MiB")
    env = cli_env(tmp_path / "state")
    killed = _start_kill_and_abort(real_bucket, key, command, env)

    result = run_cli(command, env).result

    assert result["status"] == "completed"
    assert (result["restarted"], result["resumed"]) == (True, False)
    assert result["upload_id"] != killed.upload_id
    assert (result["bytes_resumed"], result["bytes_sent"]) == (0, source.stat().st_size)
    assert object_sha256(real_bucket, key) == file_sha256(source)


def test_gone_upload_fails_when_asked_and_the_advice_works(
        real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "match.mkv", 64 * MiB, seed=5)
    key = "sport/match.mkv"
    command = upload_command(source, real_bucket.url(key), real_bucket.endpoint,
                             "--part-size", "8MiB", "--bwlimit", "16MiB",
                             "--on-upload-gone", "fail")
    env = cli_env(tmp_path / "state")
    killed = _start_kill_and_abort(real_bucket, key, command, env)

    run = run_cli(command, env)

    line = run.error_line
    assert run.returncode == 8  # UploadGoneError
    assert killed.upload_id in line
    assert real_bucket.url(key) in line
    assert "rerun" in line
    assert not object_exists(real_bucket, key)
    assert real_bucket.open_uploads() == []

    # The message says a rerun starts afresh: it does, with the very same command.
    again = run_cli(command, env).result
    assert again["status"] == "completed"
    assert (again["restarted"], again["resumed"]) == (False, False)
    assert object_sha256(real_bucket, key) == file_sha256(source)
