"""A resume state is a hint, never configuration: credentials go only where the user
pointed the command, and ``resume``/``status`` without a destination act only on the
caller's own uploads in a shared state store.

The state store may be shared by many workers, so anyone who can write one document there
could name any host in it: these tests plant such documents and check, with a host that
records every ``Authorization`` header it receives, that nothing reaches it unless the user
says ``--trust-state-endpoint``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamify as api

from tests.conftest import Bucket, free_port
from tests.functional._support import Recorder, paused_upload, recording_host, run_streamify
from tests.helpers import make_file

TOKEN = "stfy_secret-token-0123456789"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_host() as host:
        yield host


def _principal(plane: api.ControlPlane) -> str:
    try:
        return str(getattr(plane, "principal", ""))
    finally:
        plane.close()


def _plant_state(tmp_path: Path, bucket: Bucket, state_dir: str, *, endpoint: str,
                 api_url: str | None, principal: str) -> str:
    """Leave a state document for ``v.bin`` as anyone who can write to the store could;
    return the path of the document."""
    source = api.LocalFileSource(make_file(tmp_path / "planted.bin", 6 * 1024 * 1024))
    try:
        fingerprint = source.fingerprint()
    finally:
        source.close()
    state = api.ResumeState(
        endpoint=endpoint, api_url=api_url, destination=api.Destination(bucket.name, "v.bin"),
        upload_id="planted-upload", part_size=5 * 1024 * 1024, source=source.name,
        fingerprint=fingerprint, principal=principal)
    store = api.StateStore(state_dir)
    store.save(state)
    return store.path_of(state)


# ---------------------------------------------------------------- where credentials go

@pytest.mark.parametrize("pointed", ["nowhere", "api-elsewhere"])
def test_a_state_naming_another_api_service_never_gets_the_token(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, recorder: Recorder,
        pointed: str) -> None:
    document = _plant_state(
        tmp_path, moto_bucket, state_dir, endpoint=recorder.url, api_url=recorder.url,
        principal=_principal(api.HttpControlPlane(recorder.url, token=TOKEN)))
    env = {"STREAMIFY_TOKEN": TOKEN}
    if pointed == "nowhere":  # only the destination: the state alone names the service
        args = ["resume", moto_bucket.url("v.bin")]
    else:  # the user's own service is elsewhere; no destination: every state of theirs
        env["STREAMIFY_API_URL"] = f"http://127.0.0.1:{free_port()}"
        args = ["resume"]
    run = run_streamify(*args, state_dir=state_dir, env=env)
    assert recorder.authorizations == []
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("streamify: error: resume state ")
    assert document in line and recorder.url in line
    assert f"--api {recorder.url}" in line and "--trust-state-endpoint" in line


def test_a_state_naming_another_s3_endpoint_gets_no_signed_request(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, recorder: Recorder) -> None:
    document = _plant_state(
        tmp_path, moto_bucket, state_dir, endpoint=recorder.url, api_url=None,
        principal=_principal(api.S3ControlPlane()))
    run = run_streamify("resume", state_dir=state_dir)
    assert recorder.authorizations == []
    assert run.returncode == 2, run.stderr
    assert document in run.stderr and f"--endpoint-url {recorder.url}" in run.stderr

    status = run_streamify("status", state_dir=state_dir)
    assert status.returncode == 0, status.stderr
    assert "not asked: " in status.stdout and f"--endpoint-url {recorder.url}" in status.stdout
    assert recorder.authorizations == []


def test_trusting_the_state_store_sends_the_credentials_where_it_says(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, recorder: Recorder) -> None:
    _plant_state(tmp_path, moto_bucket, state_dir, endpoint=recorder.url,
                 api_url=recorder.url,
                 principal=_principal(api.HttpControlPlane(recorder.url, token=TOKEN)))
    run = run_streamify("resume", moto_bucket.url("v.bin"), "--trust-state-endpoint",
                        state_dir=state_dir, env={"STREAMIFY_TOKEN": TOKEN})
    assert f"Bearer {TOKEN}" in recorder.authorizations
    assert run.returncode == 6, run.stderr  # the recorder refuses every key


def test_trusting_the_state_store_signs_for_the_s3_endpoint_it_names(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, recorder: Recorder) -> None:
    _plant_state(tmp_path, moto_bucket, state_dir, endpoint=recorder.url, api_url=None,
                 principal=_principal(api.S3ControlPlane()))
    run_streamify("resume", "--trust-state-endpoint", state_dir=state_dir)
    assert recorder.authorizations
    key = os.environ["AWS_ACCESS_KEY_ID"]  # the caller's own, whatever the tier's
    assert all(a.startswith(f"AWS4-HMAC-SHA256 Credential={key}/")
               for a in recorder.authorizations)


def test_the_state_records_who_started_the_upload(tmp_path: Path, moto_bucket: Bucket,
                                                  state_dir: str) -> None:
    plane = api.S3ControlPlane(endpoint_url=moto_bucket.endpoint)
    paused_upload(tmp_path / "v.bin", moto_bucket, "v.bin", state_dir, control=plane)
    [state] = api.StateStore(state_dir).all()
    assert state.principal == _principal(plane) != ""
    assert state.principal == f"aws:{os.environ['AWS_ACCESS_KEY_ID']}"


# ---------------------------------------------------------------- whose uploads

def _mine_and_theirs(tmp_path: Path, bucket: Bucket, state_dir: str) -> tuple[Path, Path]:
    """Two paused uploads in one store: one started by the caller, one by someone else."""
    mine = paused_upload(tmp_path / "mine.bin", bucket, "mine.bin", state_dir)
    theirs = paused_upload(tmp_path / "theirs.bin", bucket, "theirs.bin", state_dir)
    store = api.StateStore(state_dir)
    [recorded] = [s for s in store.all() if s.destination.key == "theirs.bin"]
    store.save(dataclasses.replace(recorded, principal="aws:SOMEONE-ELSE"))
    return mine, theirs


def test_resume_without_a_destination_leaves_others_uploads_alone(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    mine, theirs = _mine_and_theirs(tmp_path, moto_bucket, state_dir)
    run = run_streamify("resume", "--endpoint-url", moto_bucket.endpoint, "--json",
                        state_dir=state_dir)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["destination"] for line in run.stdout.splitlines()] == [
        moto_bucket.url("mine.bin")]
    assert "1 unfinished upload(s)" in run.stderr and "--all" in run.stderr
    assert moto_bucket.read("mine.bin") == mine.read_bytes()
    assert [u["Key"] for u in moto_bucket.open_uploads()] == ["theirs.bin"]

    everyone = run_streamify("resume", "--endpoint-url", moto_bucket.endpoint, "--all",
                             state_dir=state_dir)
    assert everyone.returncode == 0, everyone.stderr
    assert moto_bucket.read("theirs.bin") == theirs.read_bytes()
    assert moto_bucket.open_uploads() == []


def test_status_without_a_destination_lists_your_uploads_unless_all(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    _mine_and_theirs(tmp_path, moto_bucket, state_dir)
    yours = run_streamify("status", "--endpoint-url", moto_bucket.endpoint, state_dir=state_dir)
    assert yours.returncode == 0, yours.stderr
    assert "mine.bin" in yours.stdout and "theirs.bin" not in yours.stdout
    assert "1 started by others: --all lists them" in yours.stdout

    everyone = run_streamify("status", "--endpoint-url", moto_bucket.endpoint, "--all",
                             state_dir=state_dir)
    assert everyone.returncode == 0, everyone.stderr
    assert "mine.bin" in everyone.stdout and "theirs.bin" in everyone.stdout
    assert everyone.stdout.count("5.0 MiB of 12.0 MiB in S3") == 2
