"""The example housekeeping DAG aborts abandoned uploads and reports them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamify import S3ControlPlane, StateStore, UploadConfig, Uploader

from tests.airflow._support import MiB, run_dag, task_output, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket


def _abandon(bucket: Bucket, video: Path, key: str, state: Path) -> str:
    """Start an upload of ``video`` to ``key``, send one part, stop: an abandoned upload."""
    uploader = Uploader(video, bucket.url(key),
                        control=S3ControlPlane(endpoint_url=bucket.endpoint),
                        config=UploadConfig(part_size=5 * MiB, concurrency=1),
                        state=StateStore(str(state)))
    uploader.subscribe(lambda event: uploader.pause())
    with uploader:
        result = uploader.run()
    assert result.status == "paused"
    return result.upload_id


def test_housekeeping_aborts_streamifys_abandoned_uploads_and_reports_them(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    state = tmp_path / "state"
    set_connection(monkeypatch, "tidy", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(state)})
    video = tmp_path / "v.mp4"
    write_video(video, 12 * MiB)
    ours = _abandon(moto_bucket, video, "in/v.mp4", state)
    foreign = moto_bucket.client.create_multipart_upload(
        Bucket=moto_bucket.name, Key="in/other.mp4")["UploadId"]
    dag = "streamify_housekeeping"
    conf = {"where": moto_bucket.url("in/"), "older_than_hours": 0, "conn_id": "tidy"}

    state_now, _ = run_dag(dag, {**conf, "dry_run": True})
    assert state_now == "success"
    assert {u["UploadId"] for u in moto_bucket.open_uploads()} == {ours, foreign}
    assert f"would abort {moto_bucket.url('in/v.mp4')} upload {ours}" in task_output(capfd, caplog)

    state_now, _ = run_dag(dag, conf)
    assert state_now == "success"
    assert [u["UploadId"] for u in moto_bucket.open_uploads()] == [foreign]
    out = task_output(capfd, caplog)
    assert f"aborted {moto_bucket.url('in/v.mp4')} upload {ours}" in out
    assert f"aborted 1 abandoned upload(s) under {moto_bucket.url('in/')}" in out
    assert list(state.glob("*.json")) == []

    state_now, _ = run_dag(dag, {**conf, "include_foreign": True})
    assert state_now == "success"
    assert moto_bucket.open_uploads() == []
    out = task_output(capfd, caplog)
    assert f"aborted {moto_bucket.url('in/other.mp4')} upload {foreign}" in out
