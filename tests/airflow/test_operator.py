"""The operator outside a DAG run: on_kill leaves the upload to be resumed, replace."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from streamify_airflow import StreamifyUploadOperator
from tests.airflow._support import MiB, sha256, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket


@pytest.fixture
def moto_conn(airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(monkeypatch, "moto", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(tmp_path / "state")})
    return "moto"


def _operator(source: Path, destination: str, **options: Any) -> StreamifyUploadOperator:
    return StreamifyUploadOperator(task_id="upload", source=str(source),
                                   destination=destination, conn_id="moto",
                                   part_size="5MiB", concurrency=2, **options)


def test_on_kill_stops_the_upload_and_the_next_try_resumes_it(
        moto_conn: str, moto_bucket: Bucket, tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    digest = write_video(video, 40 * MiB)
    first = _operator(video, moto_bucket.url("v/"), bwlimit="8MiB")
    failure: list[BaseException] = []

    def run() -> None:
        try:
            first.execute({})
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while not moto_bucket.open_uploads() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)
    first.on_kill()
    worker.join(60)

    assert not worker.is_alive()
    assert len(failure) == 1
    assert type(failure[0]) is AirflowException  # retryable, not AirflowFailException
    assert "run the task again to resume" in str(failure[0])
    assert len(moto_bucket.open_uploads()) == 1, "the upload was aborted"

    result = _operator(video, moto_bucket.url("v/")).execute({})

    assert result["bytes_resumed"] > 0
    assert result["bytes_resumed"] + result["bytes_sent"] == 40 * MiB
    assert sha256(moto_bucket.read("v/long.mp4")) == digest


def test_a_different_object_is_replaced_only_when_asked(
        moto_conn: str, moto_bucket: Bucket, tmp_path: Path) -> None:
    video, other = tmp_path / "clip.mp4", tmp_path / "other.mp4"
    write_video(video, 6 * MiB)
    other_digest = write_video(other, 6 * MiB)  # same size and part count, other bytes
    _operator(other, moto_bucket.url("v/clip.mp4")).execute({})

    with pytest.raises(AirflowFailException, match="already holds a different object") as caught:
        _operator(video, moto_bucket.url("v/clip.mp4")).execute({})
    assert "replace=True" in str(caught.value)
    assert sha256(moto_bucket.read("v/clip.mp4")) == other_digest

    result = _operator(video, moto_bucket.url("v/clip.mp4"),
                       replace=True).execute({})
    assert (result["skipped"], result["bytes_sent"]) == (False, 6 * MiB)
    again = _operator(video, moto_bucket.url("v/clip.mp4")).execute({})
    assert (again["skipped"], again["bytes_sent"], again["etag"]) == (True, 0, result["etag"])
