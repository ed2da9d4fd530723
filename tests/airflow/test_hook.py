"""The hook on its own: a kill (``on_kill``, from a signal handler) never blocks and always
stops the upload, and the hook closes the control plane it made."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from streamify import S3ControlPlane

import streamify_airflow._hook
from streamify_airflow import StreamifyHook, StreamifyUploadOperator
from tests.airflow._support import MiB, sha256, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket


@pytest.fixture
def moto_conn(airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(monkeypatch, "moto", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(tmp_path / "state")})
    return "moto"


def _kill_at_every_line_of_transfer(on_kill: Any) -> Any:
    """A trace function that calls ``on_kill`` before each line ``StreamifyHook.transfer``
    runs: a SIGTERM's handler runs between any two steps of the task's main thread, so
    this is each moment one may arrive, the lines holding a lock included."""
    transfer = StreamifyHook.transfer.__code__

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            on_kill()
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code is transfer else None

    return tracer


def test_a_kill_at_any_moment_of_a_transfer_stops_it_without_blocking(
        moto_conn: str, moto_bucket: Bucket, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    digest = write_video(video, 12 * MiB)
    operator = StreamifyUploadOperator(task_id="upload", source=str(video),
                                       destination=moto_bucket.url("v/"), conn_id=moto_conn,
                                       part_size="5MiB", concurrency=1)
    kills = 0

    def on_kill() -> None:
        nonlocal kills
        kills += 1
        operator.on_kill()

    outcome: list[BaseException] = []

    def run() -> None:
        sys.settrace(_kill_at_every_line_of_transfer(on_kill))
        try:
            operator.execute({})
        except BaseException as exc:
            outcome.append(exc)
        finally:
            sys.settrace(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)

    assert not worker.is_alive(), "on_kill blocked: the transfer never ended"
    assert kills > 0
    # Killed from its first line on, the upload stops (a kill that came before the run
    # began is not forgotten) and stays for the next try.
    assert len(outcome) == 1 and type(outcome[0]) is AirflowException, outcome
    assert "run the task again to resume" in str(outcome[0])
    assert moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)["KeyCount"] == 0
    assert len(moto_bucket.open_uploads()) == 1

    again = StreamifyUploadOperator(task_id="upload", source=str(video),
                                    destination=moto_bucket.url("v/"), conn_id=moto_conn,
                                    part_size="5MiB", concurrency=1).execute({})
    assert again["bytes_resumed"] + again["bytes_sent"] == 12 * MiB
    assert sha256(moto_bucket.read("v/clip.mp4")) == digest


class RecordedS3ControlPlane(S3ControlPlane):
    """A real control plane that keeps a list of those made and counts its closes."""

    made: list[RecordedS3ControlPlane] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closes = 0
        RecordedS3ControlPlane.made.append(self)

    def close(self) -> None:
        self.closes += 1
        super().close()


@pytest.fixture
def made_planes(monkeypatch: pytest.MonkeyPatch) -> list[RecordedS3ControlPlane]:
    """The control planes the hook makes from here on, recorded."""
    monkeypatch.setattr(RecordedS3ControlPlane, "made", [])
    monkeypatch.setattr(streamify_airflow._hook, "S3ControlPlane", RecordedS3ControlPlane)
    return RecordedS3ControlPlane.made


@pytest.mark.parametrize("source", ["clip.mp4", "missing.mp4"])
def test_the_operator_closes_the_control_plane_its_hook_made(
        moto_conn: str, moto_bucket: Bucket, tmp_path: Path, source: str,
        made_planes: list[RecordedS3ControlPlane]) -> None:
    write_video(tmp_path / "clip.mp4", 6 * MiB)
    operator = StreamifyUploadOperator(task_id="upload", source=str(tmp_path / source),
                                       destination=moto_bucket.url("v/"), conn_id=moto_conn,
                                       part_size="5MiB")
    if source == "missing.mp4":
        with pytest.raises(AirflowFailException):
            operator.execute({})
    else:
        operator.execute({})
    assert len(made_planes) == 1
    assert made_planes[0].closes == 1


def test_a_hook_closes_what_it_made_and_makes_a_new_one_when_used_again(
        moto_conn: str, moto_bucket: Bucket, tmp_path: Path,
        made_planes: list[RecordedS3ControlPlane]) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video, 6 * MiB)
    with StreamifyHook(moto_conn) as hook:
        hook.transfer(str(video), moto_bucket.url("a/"))
        hook.close()
        assert [plane.closes for plane in made_planes] == [1]
        hook.transfer(str(video), moto_bucket.url("b/"))
    hook.close()  # a second close is harmless and closes nothing twice
    assert [plane.closes for plane in made_planes] == [1, 1]
    assert moto_bucket.read("a/clip.mp4") == moto_bucket.read("b/clip.mp4")


def test_closing_an_unused_hook_makes_no_control_plane_to_close(
        moto_conn: str, made_planes: list[RecordedS3ControlPlane]) -> None:
    StreamifyHook(moto_conn).close()  # never used: nothing was made, nothing to close
    assert made_planes == []


def test_a_prefix_destination_names_the_object_without_the_source_urls_query() -> None:
    # A presigned https:// source carries its signature in the query: it must never
    # become part of the key (nor a fragment, nor a chained URL's first link).
    from streamify_airflow._hook import resolve_destination

    signed = "https://cdn.example.com/v/a.mov?X-Amz-Signature=0123abcd&X-Amz-Credential=k#t=1"
    assert resolve_destination(signed, "s3://bkt/in/").key == "in/a.mov"
    assert resolve_destination("simplecache::https://h/b.mp4?token=s", "s3://bkt/in/").key \
        == "in/b.mp4"
    assert resolve_destination("/data/c?.mp4", "s3://bkt/in/").key == "in/c?.mp4"
    assert resolve_destination("sftp://u@h/d/e.mkv", "s3://bkt/in/x.mkv").key == "in/x.mkv"
