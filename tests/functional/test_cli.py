"""The ``streamify`` command, run as a real process against moto's S3 server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import streamify as api

from tests.conftest import Bucket
from tests.functional._support import paused_upload
from tests.helpers import make_file
from tests.wireproxy import WireProxy

MiB = 1024 * 1024


def streamify(*args: str, state_dir: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    return subprocess.run([sys.executable, "-m", "streamify", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def streamify_in_a_terminal(*args: str, state_dir: str) -> tuple[int, str, str]:
    """Run with stderr on a terminal (a pseudo-terminal 120 columns wide), as a person
    would; return the exit code, stdout and what the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    child = subprocess.Popen([sys.executable, "-m", "streamify", *args], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert child.stdout is not None
    out = child.stdout.read().decode()
    child.stdout.close()
    return child.wait(timeout=300), out, shown.decode()


def test_a_terminal_gets_one_bar_in_mib(tmp_path: Path, moto_bucket: Bucket,
                                        state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 12 * MiB)
    code, out, shown = streamify_in_a_terminal(
        "upload", str(path), moto_bucket.url("in/clip.mp4"), "--endpoint-url",
        moto_bucket.endpoint, "--part-size", "5MiB", state_dir=state_dir)
    assert code == 0, shown
    assert "completed:" in out and "3 parts" in out and " MiB/s" in out
    bars = [line for line in shown.split("\r\n") if line.strip()]
    assert len(bars) == 1, shown  # one bar, redrawn in place
    assert "100%" in bars[0] and "12.0/12.0 MiB" in bars[0]
    assert " MiB/s" in bars[0] and "MB/s" not in shown
    assert moto_bucket.read("in/clip.mp4") == path.read_bytes()


def test_an_empty_file_draws_one_full_bar_and_is_one_part(tmp_path: Path, moto_bucket: Bucket,
                                                          state_dir: str) -> None:
    path = make_file(tmp_path / "empty.mp4", 0)
    code, out, shown = streamify_in_a_terminal(
        "upload", str(path), moto_bucket.url("empty.mp4"), "--endpoint-url",
        moto_bucket.endpoint, state_dir=state_dir)
    assert code == 0, shown
    assert "1 part;" in out
    bars = [line for line in shown.split("\r\n") if line.strip()]
    assert len(bars) == 1, shown
    assert bars[0].rsplit("\r", 1)[-1].startswith("empty.mp4: 100%"), shown
    assert moto_bucket.read("empty.mp4") == b""


@pytest.mark.parametrize("where", ["pipe", "json"])
def test_no_bar_into_a_pipe_or_with_json(tmp_path: Path, moto_bucket: Bucket, state_dir: str,
                                         where: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 6 * MiB)
    args = ["upload", str(path), moto_bucket.url("clip.mp4"), "--endpoint-url",
            moto_bucket.endpoint]
    if where == "pipe":
        run = streamify(*args, state_dir=state_dir)
        code, out, shown = run.returncode, run.stdout, run.stderr
    else:
        code, out, shown = streamify_in_a_terminal(*args, "--json", state_dir=state_dir)
        assert json.loads(out)["status"] == "completed"
    assert code == 0, shown
    assert shown.strip() == "", shown


def test_a_file_already_there_is_not_sent_again(tmp_path: Path, moto_bucket: Bucket,
                                                state_dir: str) -> None:
    path = make_file(tmp_path / "clip.mp4", 6 * MiB)
    args = ["upload", str(path), moto_bucket.url("clip.mp4"), "--endpoint-url",
            moto_bucket.endpoint, "--part-size", "5MiB"]
    assert streamify(*args, state_dir=state_dir).returncode == 0
    again = streamify(*args, state_dir=state_dir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already there: ") and "nothing sent" in again.stdout
    assert json.loads(streamify(*args, "--json", state_dir=state_dir).stdout)["skipped"] is True


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
    return paused_upload(tmp_path / "v.bin", bucket, "v.bin", state_dir)


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
    run = streamify("resume", "--endpoint-url", moto_bucket.endpoint, "--json",
                    state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["resumed"] and result["bytes_resumed"] == 5 * MiB
    assert moto_bucket.read("v.bin") == path.read_bytes()
    assert "nothing to resume" in streamify("resume", "--endpoint-url", moto_bucket.endpoint,
                                            state_dir=state_dir).stderr


def test_a_terminal_sees_the_parts_in_s3_being_checked(tmp_path: Path, moto_bucket: Bucket,
                                                       state_dir: str) -> None:
    _paused_upload(tmp_path, moto_bucket, state_dir)
    code, out, shown = streamify_in_a_terminal("resume", "--endpoint-url", moto_bucket.endpoint,
                                               state_dir=state_dir)
    assert code == 0, shown
    assert "v.bin (checking what S3 holds): 100%" in shown
    assert "5.0/5.0 MiB" in shown
    assert "resuming upload" in shown and "completed:" in out


def test_gc_leaves_uploads_in_progress_alone(tmp_path: Path, moto_bucket: Bucket,
                                             state_dir: str) -> None:
    # moto says every upload started in 2010: the date alone would make all three stale.
    _paused_upload(tmp_path, moto_bucket, state_dir)  # ours, started and written just now
    busy = _open_upload(moto_bucket, "other/busy.bin")
    moto_bucket.client.upload_part(Bucket=moto_bucket.name, Key="other/busy.bin",
                                   UploadId=busy, PartNumber=1, Body=b"x" * 1024)
    idle = _open_upload(moto_bucket, "other/idle.bin")  # no part: nothing says it is alive
    # Ours, started a moment ago and no part sent yet: only our own record says it is new.
    starting = _open_upload(moto_bucket, "new.bin")
    api.StateStore(state_dir).save(api.ResumeState(
        endpoint=moto_bucket.endpoint, destination=api.Destination(moto_bucket.name, "new.bin"),
        upload_id=starting, part_size=8 * MiB, source=str(tmp_path / "new.bin"),
        fingerprint=api.Fingerprint(size=1, version="1", edges_sha256="0" * 64)))
    gc = streamify("gc", moto_bucket.url(""), "--older-than", "1h", "--all",
                   "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert gc.returncode == 0, gc.stderr
    assert "aborted 1 stale upload(s)" in gc.stderr
    assert idle in gc.stdout
    assert sorted(u["Key"] for u in moto_bucket.open_uploads()) == [
        "new.bin", "other/busy.bin", "v.bin"]
    assert len(api.StateStore(state_dir).all()) == 2


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


def test_setup_bucket_keeps_the_buckets_other_cors_rules(moto_bucket: Bucket,
                                                         state_dir: str) -> None:
    theirs = {"AllowedOrigins": ["https://shop.example"], "AllowedMethods": ["GET"]}
    moto_bucket.client.put_bucket_cors(Bucket=moto_bucket.name,
                                       CORSConfiguration={"CORSRules": [theirs]})
    for origin in ("https://old.example", "https://app.example"):  # the second replaces ours
        run = streamify("setup-bucket", moto_bucket.url(""), "--endpoint-url",
                        moto_bucket.endpoint, "--cors-origin", origin, state_dir=state_dir)
        assert run.returncode == 0, run.stderr
    rules = moto_bucket.client.get_bucket_cors(Bucket=moto_bucket.name)["CORSRules"]
    assert [r["AllowedOrigins"] for r in rules] == [["https://shop.example"],
                                                    ["https://app.example"]]
    assert rules[0]["AllowedMethods"] == ["GET"]


@pytest.mark.reals3  # moto's server closes every connection after one request
def test_several_files_share_one_connection_pool(tmp_path: Path, real_bucket: Bucket,
                                                 state_dir: str) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for n in range(5):
        make_file(folder / f"c{n}.mov", 100_000, seed=n)
    proxy = WireProxy(real_bucket.endpoint)
    try:
        run = streamify("upload", str(folder), real_bucket.url("in/"), "--endpoint-url",
                        proxy.url, "--jobs", "1", "--concurrency", "1", state_dir=state_dir)
        counts = proxy.counts()
    finally:
        proxy.close()
    assert run.returncode == 0, run.stderr
    assert len(counts.parts) == 5
    assert counts.part_connections == 1  # one kept-alive connection carried every part


def test_several_files_upload_at_once(tmp_path: Path, moto_bucket: Bucket,
                                      state_dir: str) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    # Two 5 MiB parts each, so each file is a multipart upload that stays open meanwhile
    # (a file that fits in one part goes as one PUT).
    paths = [make_file(folder / f"c{n}.mov", 6 * MiB, seed=n) for n in range(3)]
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    # 18 MiB at 3 MiB/s for the whole command: about six seconds, however it is shared.
    child = subprocess.Popen(
        [sys.executable, "-m", "streamify", "upload", str(folder), moto_bucket.url("in/"),
         "--endpoint-url", moto_bucket.endpoint, "--jobs", "3", "--bwlimit", "3MiB",
         "--part-size", "5MiB"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    most_open = 0
    while child.poll() is None:
        most_open = max(most_open, len(moto_bucket.open_uploads()))
        time.sleep(0.05)
    out, err = child.communicate()
    assert child.returncode == 0, err
    assert most_open == 3, out
    assert len(out.splitlines()) == 3
    for path in paths:
        assert moto_bucket.read(f"in/clips/{path.name}") == path.read_bytes()


def test_a_connection_cut_mid_part_is_sent_again(tmp_path: Path, moto_bucket: Bucket,
                                                  state_dir: str) -> None:
    path = make_file(tmp_path / "v.bin", 12 * MiB)
    proxy = WireProxy(moto_bucket.endpoint)
    proxy.cut_parts(after=MiB, count=2)
    try:
        run = streamify("upload", str(path), moto_bucket.url("v.bin"), "--endpoint-url",
                        proxy.url, "--part-size", "5MiB", "--json", state_dir=state_dir)
        counts = proxy.counts()
    finally:
        proxy.close()
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "completed"
    # Two bodies were cut after 1 MiB each and sent again whole.
    assert counts.part_bytes == 12 * MiB + 2 * MiB
    assert moto_bucket.read("v.bin") == path.read_bytes()


def _slow_upload(tmp_path: Path, bucket: Bucket, proxy: WireProxy, state_dir: str
                 ) -> tuple[list[str], subprocess.Popen[str]]:
    """Start uploading 40 MiB in 5 MiB parts, two at a time, at 2 MiB/s; return once both
    workers have a part on the wire (each takes about five seconds)."""
    path = make_file(tmp_path / "v.bin", 40 * MiB)
    args = ["upload", str(path), bucket.url("v.bin"), "--endpoint-url",
            proxy.url, "--part-size", "5MiB", "--concurrency", "2", "--no-progress"]
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    child = subprocess.Popen([sys.executable, "-m", "streamify", *args, "--bwlimit", "2MiB"],
                             env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(proxy.counts().parts) < 2:
        assert time.monotonic() < deadline and child.poll() is None, "no two parts on the wire"
        time.sleep(0.05)
    return args, child


def _parts_in_s3(bucket: Bucket, key: str) -> int:
    [upload] = bucket.open_uploads()
    return len(bucket.client.list_parts(Bucket=bucket.name, Key=key,
                                        UploadId=upload["UploadId"]).get("Parts", []))


def test_ctrl_c_finishes_the_parts_in_flight_and_the_rerun_resumes(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    args, child = _slow_upload(tmp_path, moto_bucket, moto_proxy, state_dir)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130
    lines = stderr.strip().splitlines()
    assert lines == [
        "streamify: finishing the 2 parts in flight so no byte sent is wasted; press Ctrl-C "
        "again to stop now",
        "streamify: error: interrupted; rerun the same command to resume"], stderr
    # The two parts on the wire were finished, and no other was started.
    assert _parts_in_s3(moto_bucket, "v.bin") == 2
    assert moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name).get("Contents") is None
    rerun = streamify(*args, "--json", state_dir=state_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["bytes_resumed"] == 10 * MiB
    assert moto_bucket.read("v.bin") == (tmp_path / "v.bin").read_bytes()


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_state(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    args, child = _slow_upload(tmp_path, moto_bucket, moto_proxy, state_dir)
    child.send_signal(signal.SIGINT)
    assert child.stderr is not None
    assert "press Ctrl-C again to stop now" in child.stderr.readline()
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        "streamify: stopped now; the upload stays open: rerun the same command to resume"]
    # Each part in flight still needed seconds: they were cut, not finished.
    assert _parts_in_s3(moto_bucket, "v.bin") == 0
    [state] = api.StateStore(state_dir).all()
    [upload] = moto_bucket.open_uploads()
    assert state.upload_id == upload["UploadId"]
    rerun = streamify(*args, "--json", state_dir=state_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["upload_id"] == state.upload_id
    assert moto_bucket.read("v.bin") == (tmp_path / "v.bin").read_bytes()


def test_standard_input_is_uploaded_as_a_stream(tmp_path: Path, moto_bucket: Bucket,
                                                state_dir: str) -> None:
    data = os.urandom(23 * 1024 * 1024)
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    done = subprocess.run(
        [sys.executable, "-m", "streamify", "upload", "-", moto_bucket.url("piped.mp4"),
         "--endpoint-url", moto_bucket.endpoint, "--part-size", "5MiB", "--json"],
        input=data, env=env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["parts"] == 5
    assert moto_bucket.read("piped.mp4") == data
    refused = subprocess.run(
        [sys.executable, "-m", "streamify", "upload", "-", moto_bucket.url("in/"),
         "--endpoint-url", moto_bucket.endpoint], input=b"x", env=env,
        capture_output=True, timeout=60, check=False)
    assert refused.returncode == 2 and b"s3://bucket/key" in refused.stderr
