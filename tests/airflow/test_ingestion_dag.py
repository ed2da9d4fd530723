"""The example ingestion DAG, run by ``dag.test()`` against moto's server and Ceph radosgw.

Five videos (one to three 16 MiB parts each) and a file that is not a video go in; each
object must come out byte-identical (SHA-256), the manifest next to them must say what was
ingested, and a second run must send nothing and leave every object as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.airflow._support import MiB, run_dag, sha256, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket

SIZES = {"intro.mp4": 1 * MiB, "take-1.mov": 6 * MiB + 3, "take-2.mkv": 17 * MiB,
         "interview.mp4": 33 * MiB + 123, "b-roll.webm": 40 * MiB}


def _connect(store: str, bucket: Bucket, monkeypatch: pytest.MonkeyPatch,
             state: Path) -> str:
    """A connection to ``bucket``: direct on moto, through an AWS connection on radosgw."""
    if store == "moto":
        set_connection(monkeypatch, "ingest", conn_type="streamify", host=bucket.endpoint,
                       extra={"mode": "direct", "state_location": str(state)})
        return "ingest"
    set_connection(monkeypatch, "rgw_aws", conn_type="aws",
                   login=os.environ["AWS_ACCESS_KEY_ID"],
                   password=os.environ["AWS_SECRET_ACCESS_KEY"],
                   extra={"endpoint_url": bucket.endpoint, "region_name": "us-east-1"})
    set_connection(monkeypatch, "ingest", conn_type="streamify",
                   extra={"mode": "direct", "aws_conn_id": "rgw_aws",
                          "state_location": str(state)})
    return "ingest"


@pytest.mark.parametrize("store", ["moto", pytest.param("radosgw", marks=pytest.mark.reals3)])
def test_ingestion_uploads_each_video_once_and_writes_a_manifest(
        store: str, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    bucket: Bucket = request.getfixturevalue("moto_bucket" if store == "moto" else "real_bucket")
    videos = tmp_path / "videos"
    videos.mkdir()
    digests = {name: write_video(videos / name, size) for name, size in SIZES.items()}
    (videos / "notes.txt").write_text("not a video")
    conf = {"source": str(videos), "destination": bucket.url("incoming/"),
            "conn_id": _connect(store, bucket, monkeypatch, tmp_path / "state"),
            "video_facts": False}  # random bytes: no facts to read (see test_video.py)
    dag = "streamify_video_ingestion"

    state, tries = run_dag(dag, conf)

    assert state == "success"
    uploads = [t for (task_id, _), t in tries.items() if task_id == "upload"]
    assert len(uploads) == len(SIZES)
    assert all(t.state == "success" and t.try_number == 1 for t in uploads)
    objects = _objects(bucket)
    assert set(objects) == {f"incoming/{name}" for name in SIZES} | {"incoming/manifest.json"}
    for name, digest in digests.items():
        assert sha256(bucket.read(f"incoming/{name}")) == digest, name
    first = json.loads(bucket.read("incoming/manifest.json"))
    assert first["videos"] == sorted((
        {"source": str(videos / name), "key": f"incoming/{name}", "size": size,
         "etag": objects[f"incoming/{name}"]["ETag"].strip('"'), "bytes_sent": size,
         "bytes_resumed": 0, "skipped": False, "video": None}
        for name, size in SIZES.items()), key=lambda entry: entry["key"])

    state, tries = run_dag(dag, conf)

    assert state == "success"
    again = _objects(bucket)
    for name in SIZES:
        key = f"incoming/{name}"
        assert again[key]["ETag"] == objects[key]["ETag"]
        assert again[key]["LastModified"] == objects[key]["LastModified"], f"{key} was rewritten"
    second = json.loads(bucket.read("incoming/manifest.json"))
    assert second["dag_run"] != first["dag_run"]
    # Already there: nothing sent, and nothing resumed either (no upload was picked up).
    assert [(v["key"], v["skipped"], v["bytes_sent"], v["bytes_resumed"])
            for v in second["videos"]] == [(v["key"], True, 0, 0) for v in first["videos"]]
    assert bucket.open_uploads() == []


def _objects(bucket: Bucket) -> dict[str, dict[str, Any]]:
    listed = bucket.client.list_objects_v2(Bucket=bucket.name).get("Contents", [])
    return {item["Key"]: dict(item) for item in listed}


def test_ingestion_reads_any_fsspec_url_and_glob(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    clips = {"clips/a.mp4": os.urandom(6 * MiB), "clips/b.mp4": os.urandom(MiB),
             "clips/c.mov": os.urandom(MiB)}
    for path, data in clips.items():
        memory.pipe(f"/{path}", data)
    conf = {"source": "memory://clips/*.mp4", "destination": moto_bucket.url("m/"),
            "conn_id": _connect("moto", moto_bucket, monkeypatch, tmp_path / "state")}

    state, _ = run_dag("streamify_video_ingestion", conf)

    assert state == "success"
    assert set(_objects(moto_bucket)) == {"m/a.mp4", "m/b.mp4", "m/manifest.json"}
    assert moto_bucket.read("m/a.mp4") == clips["clips/a.mp4"]
    manifest = json.loads(moto_bucket.read("m/manifest.json"))["videos"]
    assert [v["source"] for v in manifest] == [memory.unstrip_protocol(f"/clips/{name}")
                                              for name in ("a.mp4", "b.mp4")]
