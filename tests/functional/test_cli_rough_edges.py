"""Rough edges a new user met on a fresh machine, each through the real command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import Bucket
from tests.functional._support import MiB, paused_upload, recording_host, run_streamify
from tests.helpers import make_file


@pytest.mark.parametrize("error", ["missing-source", "access-denied"])
def test_debug_mode_shows_the_traceback_and_keeps_the_exit_code(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, error: str) -> None:
    with recording_host() as refusing:  # an API service that refuses every key
        if error == "missing-source":
            args, code = [str(tmp_path / "nowhere.mp4"), moto_bucket.url("v.mp4"),
                          "--endpoint-url", moto_bucket.endpoint], 3
        else:
            args, code = [str(make_file(tmp_path / "v.mp4", 100)), moto_bucket.url("v.mp4"),
                          "--api", refusing.url, "--token", "stfy_wrong"], 6
        run = run_streamify("upload", *args, state_dir=state_dir,
                            env={"STREAMIFY_DEBUG": "1"})
    assert run.returncode == code, run.stderr
    assert "Traceback (most recent call last)" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("streamify: error: ")


def test_a_bucket_your_states_put_elsewhere_is_not_asked_of_aws(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    paused_upload(tmp_path / "v.bin", moto_bucket, "v.bin", state_dir)
    for args in (["status", moto_bucket.url("")], ["abort", moto_bucket.url("v.bin")],
                 ["gc", moto_bucket.url(""), "--older-than", "0s"]):
        run = run_streamify(*args, state_dir=state_dir)
        assert run.returncode == 2, (args, run.stderr)
        [line] = run.stderr.splitlines()
        assert f"s3://{moto_bucket.name}: no --endpoint-url or --api was given" in line
        assert f"pass --endpoint-url {moto_bucket.endpoint}" in line
    assert len(moto_bucket.open_uploads()) == 1

    status = run_streamify("status", moto_bucket.url(""), "--endpoint-url",
                           moto_bucket.endpoint, state_dir=state_dir)
    assert status.returncode == 0, status.stderr
    assert "open multipart uploads under" in status.stdout


def test_an_s3_source_is_read_from_the_endpoint_given(tmp_path: Path, moto_bucket: Bucket,
                                                      state_dir: str) -> None:
    bodies = {"raw/a.bin": b"a" * (6 * MiB), "raw/b.bin": b"b" * 1000}
    for key, body in bodies.items():
        moto_bucket.client.put_object(Bucket=moto_bucket.name, Key=key, Body=body)
    run = run_streamify("upload", f"s3://{moto_bucket.name}/raw/*.bin", moto_bucket.url("copy/"),
                        "--endpoint-url", moto_bucket.endpoint, "--part-size", "5MiB",
                        state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    assert moto_bucket.read("copy/a.bin") == bodies["raw/a.bin"]
    assert moto_bucket.read("copy/b.bin") == bodies["raw/b.bin"]


def test_setup_bucket_creates_a_bucket_without_a_cors_origin(moto_bucket: Bucket,
                                                             state_dir: str) -> None:
    name = f"new-{uuid.uuid4().hex[:12]}"
    run = run_streamify("setup-bucket", f"s3://{name}", "--create", "--endpoint-url",
                        moto_bucket.endpoint, state_dir=state_dir)
    try:
        assert run.returncode == 0, run.stderr
        assert "no CORS rule" in run.stdout and "--cors-origin" in run.stdout
        rules = moto_bucket.client.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        with pytest.raises(moto_bucket.client.exceptions.ClientError, match="NoSuchCORS"):
            moto_bucket.client.get_bucket_cors(Bucket=name)
    finally:
        if name in [b["Name"] for b in moto_bucket.client.list_buckets()["Buckets"]]:
            moto_bucket.client.delete_bucket(Bucket=name)


def test_setup_bucket_says_what_its_endpoint_option_is(state_dir: str) -> None:
    run = run_streamify("setup-bucket", "--help", state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    endpoint_help = run.stdout[run.stdout.index("--endpoint-url"):].split("--abort-after")[0]
    assert "S3 endpoint" in endpoint_help
    assert "--create" in run.stdout and "Without it no CORS rule" in " ".join(run.stdout.split())


def test_an_object_already_there_reports_nothing_resumed(tmp_path: Path, moto_bucket: Bucket,
                                                         state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 12 * MiB)
    args = ["upload", str(path), moto_bucket.url("clip.mp4"), "--endpoint-url",
            moto_bucket.endpoint, "--part-size", "5MiB", "--json"]
    assert run_streamify(*args, state_dir=state_dir).returncode == 0
    again = json.loads(run_streamify(*args, state_dir=state_dir).stdout)
    assert again["skipped"] is True
    assert (again["bytes_sent"], again["bytes_resumed"], again["resumed"]) == (0, 0, False)


def test_resume_takes_a_bandwidth_cap(tmp_path: Path, moto_bucket: Bucket,
                                      state_dir: str) -> None:
    paused_upload(tmp_path / "v.bin", moto_bucket, "v.bin", state_dir)
    run = run_streamify("resume", "--endpoint-url", moto_bucket.endpoint, "--bwlimit", "2MiB",
                        "--json", state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["bytes_sent"] == 7 * MiB
    # One second of burst (2 MiB), then 5 MiB at 2 MiB/s: never faster than 2.5 s.
    assert result["seconds"] >= 2.5


def test_the_demo_counts_the_parts_in_s3_once(tmp_path: Path) -> None:
    demo = subprocess.run([sys.executable, "-m", "streamify", "demo", "--size", "96MiB"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    told = demo.stdout + demo.stderr
    killed = re.search(r"with (\d+) of 12 parts in S3", told)
    resumed = re.search(r"\((\d+) parts?\) already in S3, verified", told)
    assert killed and resumed, told
    assert killed.group(1) == resumed.group(1), told
