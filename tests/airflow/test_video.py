"""Video facts in the operator: probed before any byte is sent (counted on the wire between
the operator and moto), returned under ``video``, stored as object metadata when asked, and
the ``not_a_video`` policy for a text file named .mp4 and a truncated MP4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from streamify_airflow import StreamifyUploadOperator
from tests.airflow._support import run_dag
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket
from tests.videos import make_clip, need_pyav
from tests.wireproxy import WireProxy


@pytest.fixture
def wire(airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[WireProxy]:
    """The connection ``wired``: moto behind a proxy that records every request."""
    need_pyav()
    proxy = WireProxy(moto_bucket.endpoint)
    set_connection(monkeypatch, "wired", conn_type="streamify", host=proxy.url,
                   extra={"state_location": str(tmp_path / "state")})
    yield proxy
    proxy.close()


def _upload(source: Path, bucket: Bucket, **options: Any) -> dict[str, Any]:
    operator = StreamifyUploadOperator(task_id="upload", source=str(source),
                                       destination=bucket.url("v/"), conn_id="wired",
                                       **options)
    context: Any = {"outlet_events": {}}  # no outlets: nothing is attached to them
    result: dict[str, Any] = operator.execute(context)
    return result


def _not_videos(folder: Path) -> dict[str, Path]:
    notes = folder / "notes.mp4"
    notes.write_text("minutes of the meeting\n" * 100)
    whole = make_clip(folder / "whole.mp4").read_bytes()
    cut = folder / "cut.mp4"
    cut.write_bytes(whole[:len(whole) // 2])
    return {"text": notes, "truncated": cut}


def test_facts_go_in_the_xcom_value_and_the_object_metadata(
        wire: WireProxy, moto_bucket: Bucket, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", audio="aac")

    result = _upload(clip, moto_bucket, video_metadata=True, metadata={"team": "news"})

    video = result["video"]
    assert (video["container"], video["video_codec"], video["audio_codec"]) == (
        "mov,mp4,m4a,3gp,3g2,mj2", "mpeg4", "aac")
    assert (video["width"], video["height"], video["fps"]) == (160, 120, 25.0)
    assert video["duration"] == pytest.approx(2.0, abs=0.05)
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="v/clip.mp4")
    assert head["Metadata"] == {
        "team": "news", "container": "mov,mp4,m4a,3gp,3g2,mj2", "codec": "mpeg4",
        "width": "160", "height": "120", "fps": "25",
        "duration": f"{video['duration']:.3f}", "audio": "aac"}
    assert result["metadata"] == head["Metadata"]
    assert moto_bucket.read("v/clip.mp4") == clip.read_bytes()


def test_facts_without_metadata_and_no_probe_unless_asked(
        wire: WireProxy, moto_bucket: Bucket, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", codec="libx264")

    probed = _upload(clip, moto_bucket, video_facts="true")
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="v/clip.mkv")
    plain = _upload(_not_videos(tmp_path)["text"], moto_bucket)

    assert (probed["video"]["video_codec"], probed["video"]["container"]) == (
        "h264", "matroska,webm")
    assert head["Metadata"] == {}
    assert plain["video"] is None  # not asked: a text file goes up like any file
    assert plain["size"] == 2300


@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_not_a_video_fails_before_a_request(kind: str, wire: WireProxy, moto_bucket: Bucket,
                                            tmp_path: Path) -> None:
    source = _not_videos(tmp_path)[kind]

    with pytest.raises(AirflowFailException, match=f"{source.name} is not a video FFmpeg "
                                                   "can read"):
        _upload(source, moto_bucket, video_facts=True)

    assert wire.requests == []


@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_not_a_video_skipped_before_a_request(kind: str, wire: WireProxy,
                                              moto_bucket: Bucket, tmp_path: Path) -> None:
    source = _not_videos(tmp_path)[kind]

    with pytest.raises(AirflowSkipException, match="skipped"):
        _upload(source, moto_bucket, video_metadata=True, not_a_video=" Skip ")

    assert wire.requests == []


def test_not_a_video_uploaded_when_the_dag_says_so(wire: WireProxy, moto_bucket: Bucket,
                                                   tmp_path: Path) -> None:
    source = _not_videos(tmp_path)["text"]

    result = _upload(source, moto_bucket, video_metadata=True, not_a_video="upload")

    assert result["video"] is None
    assert moto_bucket.read("v/notes.mp4") == source.read_bytes()
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="v/notes.mp4")
    assert head["Metadata"] == {}
    assert any(method == "PUT" for method, _ in wire.requests)


@pytest.mark.parametrize(("option", "value"), [("not_a_video", "maybe"),
                                               ("video_facts", "sometimes")])
def test_a_bad_video_option_fails_before_a_request(option: str, value: str, wire: WireProxy,
                                                   moto_bucket: Bucket,
                                                   tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")

    with pytest.raises(AirflowFailException, match=f"{option}='{value}'"):
        _upload(clip, moto_bucket, **{option: value})

    assert wire.requests == []


def test_facts_too_big_for_metadata_beside_the_given_fail(wire: WireProxy,
                                                          moto_bucket: Bucket,
                                                          tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    given = {"note": "x" * 2000}

    with pytest.raises(AirflowFailException, match="2 KiB of user metadata"):
        _upload(clip, moto_bucket, video_metadata=True, metadata=given)

    assert wire.requests == []


def test_ingestion_dag_puts_facts_in_manifest_and_metadata_and_skips_non_videos(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    need_pyav()
    videos = tmp_path / "videos"
    videos.mkdir()
    make_clip(videos / "clip.mp4", audio="aac")
    make_clip(videos / "clip.webm", codec="libvpx-vp9", audio="libopus", rate=30)
    broken = _not_videos(tmp_path)
    (videos / "notes.mp4").write_bytes(broken["text"].read_bytes())
    (videos / "cut.mov").write_bytes(broken["truncated"].read_bytes())
    set_connection(monkeypatch, "ingest", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(tmp_path / "state")})
    conf = {"source": str(videos), "destination": moto_bucket.url("in/"), "conn_id": "ingest",
            "not_a_video": "skip"}

    state, tries = run_dag("streamify_video_ingestion", conf)

    assert state == "success"
    assert sorted(t.state for (task, _), t in tries.items() if task == "upload") == [
        "skipped", "skipped", "success", "success"]
    assert tries[("write_manifest", -1)].state == "success"
    listed = moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        "in/clip.mp4", "in/clip.webm", "in/manifest.json"]
    assert moto_bucket.open_uploads() == []
    manifest = json.loads(moto_bucket.read("in/manifest.json"))["videos"]
    facts = {entry["key"]: entry["video"] for entry in manifest}
    assert [(f["container"], f["video_codec"], f["audio_codec"], f["width"], f["fps"])
            for f in facts.values()] == [
        ("mov,mp4,m4a,3gp,3g2,mj2", "mpeg4", "aac", 160, 25.0),
        ("matroska,webm", "vp9", "opus", 160, 30.0)]
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="in/clip.webm")
    assert head["Metadata"] == {"container": "matroska,webm", "codec": "vp9", "width": "160",
                                "height": "120", "fps": "30", "audio": "opus",
                                "duration": f"{facts['in/clip.webm']['duration']:.3f}"}
