"""The ``streamify`` command, run as a real process against moto's S3 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import streamify as api

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024


def streamify(*args: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    return subprocess.run([sys.executable, "-m", "streamify", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_upload_shows_progress_and_a_summary(tmp_path: Path, moto_bucket: Bucket,
                                            state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 12 * MiB)
    run = streamify("upload", str(path), moto_bucket.url("in/clip.mp4"), "--endpoint-url",
                    moto_bucket.endpoint, "--part-size", "5MiB", state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    assert "completed:" in run.stdout and "3 parts" in run.stdout
    assert "12.0M/12.0M" in run.stderr  # the tqdm bar reached the end
    assert moto_bucket.read("in/clip.mp4") == path.read_bytes()


def test_directories_and_globs_go_under_a_prefix(tmp_path: Path, moto_bucket: Bucket,
                                                 state_dir: str) -> None:
    shoot = tmp_path / "shoot"
    (shoot / "day2").mkdir(parents=True)
    make_file(shoot / "a.mov", 100)
    make_file(shoot / "day2" / "b.mov", 200)
    make_file(tmp_path / "x1.mp4", 10)
    make_file(tmp_path / "x2.mp4", 20)
    run = streamify("upload", str(shoot), str(tmp_path / "x*.mp4"), moto_bucket.url("in/"),
                    "--endpoint-url", moto_bucket.endpoint, "--json", state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(r["destination"] for r in results) == [
        moto_bucket.url(k) for k in ("in/shoot/a.mov", "in/shoot/day2/b.mov",
                                     "in/x1.mp4", "in/x2.mp4")]
    assert all(r["status"] == "completed" for r in results)
    assert moto_bucket.read("in/shoot/day2/b.mov") == (shoot / "day2" / "b.mov").read_bytes()


def test_several_files_need_a_prefix(tmp_path: Path, moto_bucket: Bucket,
                                     state_dir: str) -> None:
    make_file(tmp_path / "a", 1)
    make_file(tmp_path / "b", 1)
    run = streamify("upload", str(tmp_path / "a"), str(tmp_path / "b"), moto_bucket.url("k"),
                    "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert run.returncode == 2
    assert "end s3://" in run.stderr and "with '/'" in run.stderr


def _open_upload(bucket: Bucket, key: str) -> str:
    upload_id: str = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    return upload_id


def test_status_abort_and_gc(tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    foreign = _open_upload(moto_bucket, "other/tool.bin")
    mine = _open_upload(moto_bucket, "in/mine.bin")
    status = streamify("status", moto_bucket.url(""), "--endpoint-url", moto_bucket.endpoint,
                       state_dir=state_dir)
    assert status.returncode == 0, status.stderr
    assert foreign in status.stdout and mine in status.stdout
    assert "open multipart uploads under" in status.stdout

    gc = streamify("gc", moto_bucket.url(""), "--older-than", "0s", "--endpoint-url",
                   moto_bucket.endpoint, state_dir=state_dir)
    assert gc.returncode == 0, gc.stderr
    assert "aborted 0 stale upload(s)" in gc.stderr  # neither was started by streamify

    dry = streamify("gc", moto_bucket.url("other/"), "--older-than", "0s", "--all",
                    "--dry-run", "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert "would abort" in dry.stdout and foreign in dry.stdout
    assert len(moto_bucket.open_uploads()) == 2

    abort = streamify("abort", moto_bucket.url("in/mine.bin"), "--endpoint-url",
                      moto_bucket.endpoint, state_dir=state_dir)
    assert abort.returncode == 0, abort.stderr
    assert f"aborted upload {mine}" in abort.stdout
    assert [u["UploadId"] for u in moto_bucket.open_uploads()] == [foreign]

    gc_all = streamify("gc", moto_bucket.url(""), "--older-than", "0s", "--all",
                       "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert foreign in gc_all.stdout
    assert moto_bucket.open_uploads() == []


def _paused_upload(tmp_path: Path, bucket: Bucket, state_dir: str) -> Path:
    """Start uploading a 12 MiB file and pause it after its first 5 MiB part."""
    path: Path = make_file(tmp_path / "v.bin", 12 * MiB)
    uploader = api.Uploader(path, bucket.url("v.bin"),
                            control=api.S3ControlPlane(endpoint_url=bucket.endpoint),
                            config=api.UploadConfig(part_size=5 * MiB, concurrency=1),
                            state=api.StateStore(state_dir))
    uploader.subscribe(lambda e: isinstance(e, api.PartDone) and uploader.pause())
    assert uploader.run().status == "paused"
    return path


def test_gc_aborts_stale_uploads_streamify_started(tmp_path: Path, moto_bucket: Bucket,
                                                   state_dir: str) -> None:
    _paused_upload(tmp_path, moto_bucket, state_dir)
    status = streamify("status", "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert "5.0 MiB of 12.0 MiB in S3" in status.stdout
    gc = streamify("gc", moto_bucket.url(""), "--older-than", "0s", "--endpoint-url",
                   moto_bucket.endpoint, state_dir=state_dir)
    assert "aborted 1 stale upload(s)" in gc.stderr
    assert moto_bucket.open_uploads() == []
    assert api.StateStore(state_dir).all() == []


def test_resume_command_finishes_paused_uploads(tmp_path: Path, moto_bucket: Bucket,
                                                state_dir: str) -> None:
    path = _paused_upload(tmp_path, moto_bucket, state_dir)
    run = streamify("resume", "--json", state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["resumed"] and result["bytes_resumed"] == 5 * MiB
    assert moto_bucket.read("v.bin") == path.read_bytes()
    assert "nothing to resume" in streamify("resume", state_dir=state_dir).stderr


def test_setup_bucket_applies_lifecycle_and_cors(moto_bucket: Bucket, state_dir: str) -> None:
    run = streamify("setup-bucket", moto_bucket.url(""), "--endpoint-url", moto_bucket.endpoint,
                    "--abort-after", "3d", "--cors-origin", "https://app.example",
                    state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    rules = moto_bucket.client.get_bucket_lifecycle_configuration(Bucket=moto_bucket.name)
    assert rules["Rules"][0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}
    cors = moto_bucket.client.get_bucket_cors(Bucket=moto_bucket.name)["CORSRules"][0]
    assert cors["ExposeHeaders"] == ["ETag"]
    assert cors["AllowedOrigins"] == ["https://app.example"]


def test_ctrl_c_stops_promptly_and_the_rerun_resumes(tmp_path: Path, moto_bucket: Bucket,
                                                     state_dir: str) -> None:
    import signal
    import time

    path = make_file(tmp_path / "v.bin", 40 * MiB)
    args = ["upload", str(path), moto_bucket.url("v.bin"), "--endpoint-url",
            moto_bucket.endpoint, "--part-size", "5MiB", "--concurrency", "2", "--no-progress"]
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    child = subprocess.Popen([sys.executable, "-m", "streamify", *args, "--bwlimit", "4MiB"],
                             env=env, stderr=subprocess.PIPE, text=True)
    while not moto_bucket.open_uploads():
        time.sleep(0.05)
    time.sleep(1.5)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130
    assert stderr.strip().splitlines()[-1] == (
        "streamify: error: interrupted; rerun the same command to resume")
    # No new part was started after Ctrl-C: the upload is open, most of its 8 parts unsent.
    [upload] = moto_bucket.open_uploads()
    parts = moto_bucket.client.list_parts(Bucket=moto_bucket.name, Key="v.bin",
                                          UploadId=upload["UploadId"]).get("Parts", [])
    assert len(parts) <= 5
    listed = moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name).get("Contents", [])
    assert listed == []
    rerun = streamify(*args, "--json", state_dir=state_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["resumed"] is True
    assert moto_bucket.read("v.bin") == path.read_bytes()
