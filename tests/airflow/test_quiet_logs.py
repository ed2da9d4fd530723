"""A green run of the ingestion DAG logs no error line, and an object that is already in S3
costs its task one log line (``already holds ... nothing to send``), nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.airflow._support import MiB, run_dag, task_output, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket

ERROR_LINE = re.compile(r"\[error\s*\]|\bERROR\b|\bCRITICAL\b|Traceback")


def test_a_green_run_logs_no_error_and_a_skipped_object_one_line(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mov"):
        write_video(videos / name, MiB)
    set_connection(monkeypatch, "quiet", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(tmp_path / "state")})
    conf = {"source": str(videos), "destination": moto_bucket.url("q/"), "conn_id": "quiet"}
    task_output(capfd, caplog)  # what came before the run

    state, _ = run_dag("streamify_video_ingestion", conf)
    first = task_output(capfd, caplog)
    state_again, _ = run_dag("streamify_video_ingestion", conf)
    second = task_output(capfd, caplog)

    assert (state, state_again) == ("success", "success")
    for run in (first, second):
        errors = [line for line in run.splitlines() if ERROR_LINE.search(line)]
        assert errors == [], "\n".join(errors)
    for name in ("a.mp4", "b.mov"):
        key = f"s3://{moto_bucket.name}/q/{name}"
        about = [line for line in second.splitlines()
                 if key in line and "[airflow.task.operators" in line]
        assert len(about) == 1, about
        assert "already holds" in about[0] and "nothing to send" in about[0], about
        assert any(f"uploaded {key}" in line for line in first.splitlines()), name
