"""Downstream hears of uploads: Airflow asset events, an asset-scheduled DAG, OpenLineage.

The example ingestion DAG runs by ``dag.test()`` against moto; its uploads must be asset
events (through the alias ``streamify_ingested_videos``) with size, ETag and source in
their extra, recorded in Airflow's metadata database, and must queue the downstream DAG
``streamify_after_ingestion`` for the scheduler. With OpenLineage configured to write its
events to a file, ``airflow dags test`` must report each upload's source and object, and
the manifest the hook wrote (hook-level lineage).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streamify_airflow import StreamifyUploadOperator, TransferSummary
from tests.airflow._services import AIRFLOW
from tests.airflow._support import MiB, run_dag, write_video
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket

ROOT = Path(__file__).resolve().parents[2]
INGESTION = "streamify_video_ingestion"
DOWNSTREAM = "streamify_after_ingestion"
ALIAS = "streamify_ingested_videos"
SIZES = {"intro.mp4": 1 * MiB, "take-1.mov": 6 * MiB + 3}


def _videos(folder: Path) -> Path:
    folder.mkdir()
    for name, size in SIZES.items():
        write_video(folder / name, size)
    return folder


def _ingest_conf(moto_bucket: Bucket, videos: Path, monkeypatch: pytest.MonkeyPatch,
                 state: Path) -> dict[str, Any]:
    set_connection(monkeypatch, "ingest", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"mode": "direct", "state_location": str(state)})
    return {"source": str(videos), "destination": moto_bucket.url("in/"), "conn_id": "ingest"}


def _events(bucket: Bucket) -> list[dict[str, Any]]:
    """The asset events recorded for objects of ``bucket``, with the aliases they came
    through."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri.startswith(f"s3://{bucket.name}/"))).all()
        return [{"uri": row.asset.uri, "extra": row.extra, "dag": row.source_dag_id,
                 "task": row.source_task_id, "aliases": sorted(a.name for a in row.source_aliases)}
                for row in rows]


def _queued_for(dag_id: str, bucket: Bucket) -> list[str]:
    """The assets of ``bucket`` the scheduler holds events of for ``dag_id`` (ADRQ)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return sorted(session.scalars(
            select(AssetModel.uri).join(AssetDagRunQueue,
                                        AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == dag_id,
                   AssetModel.uri.startswith(f"s3://{bucket.name}/"))).all())


def _scheduler_would_start(dag_id: str) -> bool:
    """Whether the scheduler's next loop creates an asset-triggered run of ``dag_id``."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        _, triggered = DagModel.dags_needing_dagruns(session)
        return dag_id in triggered


def test_uploads_are_asset_events_that_queue_the_downstream_dag(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    videos = _videos(tmp_path / "videos")
    conf = _ingest_conf(moto_bucket, videos, monkeypatch, tmp_path / "state")

    state, _ = run_dag(INGESTION, conf)

    assert state == "success"
    etags = {item["Key"]: item["ETag"].strip('"') for item in moto_bucket.client.list_objects_v2(
        Bucket=moto_bucket.name)["Contents"]}
    events = sorted(_events(moto_bucket), key=lambda event: event["uri"])
    assert events == [
        {"uri": moto_bucket.url(f"in/{name}"), "dag": INGESTION, "task": "upload",
         "aliases": [ALIAS],
         "extra": {"size": size, "etag": etags[f"in/{name}"], "source": str(videos / name),
                   "skipped": False}}
        for name, size in sorted(SIZES.items(), key=lambda item: moto_bucket.url(item[0]))]
    # The downstream DAG (scheduled on the alias) is queued for exactly those objects.
    assert _queued_for(DOWNSTREAM, moto_bucket) == [e["uri"] for e in events]
    assert _scheduler_would_start(DOWNSTREAM)

    state, _ = run_dag(INGESTION, conf)

    assert state == "success"
    assert len(_events(moto_bucket)) == len(SIZES), "a skipped upload made an asset event"


def _summary(bucket: Bucket, source: str, *, skipped: bool) -> TransferSummary:
    return TransferSummary(bucket=bucket.name, key="in/a.mp4", size=7, etag="e", parts=1,
                           bytes_sent=0 if skipped else 7, bytes_resumed=0, seconds=0.1,
                           upload_id="", skipped=skipped, source=source,
                           content_type="video/mp4", metadata={})


@pytest.fixture
def openlineage() -> None:
    if importlib.util.find_spec("airflow.providers.openlineage") is None:
        pytest.skip("OpenLineage tests skipped: the lineage extra is not installed "
                    "(bash scripts/setup.sh server,dev,airflow,lineage)")


def _ol_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(side, [])]


def test_openlineage_reports_each_upload_and_the_manifest(
        openlineage: None, airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    videos = _videos(tmp_path / "videos")
    conf = _ingest_conf(moto_bucket, videos, monkeypatch, tmp_path / "state")
    lineage = tmp_path / "openlineage.jsonl"
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
        {"type": "file", "log_file_path": str(lineage), "append": True})}

    done = subprocess.run([AIRFLOW, "dags", "test", INGESTION, "--conf", json.dumps(conf)],
                          env=env, capture_output=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr.decode()[-3000:]
    completed: dict[str, list[dict[str, Any]]] = {}
    for event in _ol_events(lineage):
        if event.get("eventType") == "COMPLETE" and "job" in event:
            completed.setdefault(event["job"]["name"], []).append(event)
    uploads = completed[f"{INGESTION}.upload"]
    assert sorted(_datasets(e, "inputs")[0] for e in uploads) == [
        ("file", str(videos / name)) for name in sorted(SIZES)]
    outputs = sorted((e["outputs"][0] for e in uploads), key=lambda d: d["name"])
    assert [(d["namespace"], d["name"]) for d in outputs] == [
        (f"s3://{moto_bucket.name}", f"in/{name}") for name in sorted(SIZES)]
    assert [d["outputFacets"]["outputStatistics"]["size"] for d in outputs] == [
        SIZES[name] for name in sorted(SIZES)]
    # write_manifest is a @task calling StreamifyHook.transfer: hook-level lineage. (The
    # collector is one per process: dag.test() runs every task in this one, so it also
    # holds the uploads before it; a worker runs each task in a process of its own.)
    [manifest] = completed[f"{INGESTION}.write_manifest"]
    assert [name for namespace, name in _datasets(manifest, "inputs")
            if namespace == "file" and name.endswith("/manifest.json")]
    assert (f"s3://{moto_bucket.name}", "in/manifest.json") in _datasets(manifest, "outputs")


def _operator(source: str, destination: str, **kwargs: Any) -> StreamifyUploadOperator:
    return StreamifyUploadOperator(task_id="upload", source=source, destination=destination,
                                   conn_id="moto", **kwargs)


def test_the_operator_names_source_and_object_by_the_openlineage_convention(
        openlineage: None, airflow_db: Path, moto_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "moto", conn_type="streamify", host=moto_bucket.endpoint,
                   extra={"state_location": str(tmp_path / "state")})
    write_video(tmp_path / "clip.mp4", 1 * MiB)
    monkeypatch.chdir(tmp_path)
    operator = _operator("clip.mp4", moto_bucket.url("v/"))

    start = operator.get_openlineage_facets_on_start()
    operator.execute({"outlet_events": _outlet_events()})
    complete = operator.get_openlineage_facets_on_complete(None)

    bucket = f"s3://{moto_bucket.name}"
    for lineage in (start, complete):
        assert [(d.namespace, d.name) for d in lineage.inputs] == [
            ("file", str(tmp_path / "clip.mp4"))]
        assert [(d.namespace, d.name) for d in lineage.outputs] == [(bucket, "v/clip.mp4")]
    assert complete.outputs[0].outputFacets["outputStatistics"].size == 1 * MiB
    remote = _operator("sftp://ingest:s3cret@media.example:2222/exports/a.mov",
                       moto_bucket.url("v/")).get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in remote.inputs] == [
        ("sftp://media.example:2222", "/exports/a.mov")]
    assert [(d.namespace, d.name) for d in remote.outputs] == [(bucket, "v/a.mov")]
    chained = _operator(f"simplecache::{moto_bucket.url('raw/b.mp4')}",
                        moto_bucket.url("v/b.mp4")).get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in chained.inputs] == [(bucket, "raw/b.mp4")]


def _outlet_events() -> Any:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return OutletEventAccessors()


@pytest.mark.parametrize(("skipped", "try_number", "event"), [
    (False, 1, True), (True, 1, False), (True, 2, True)])
def test_a_skipped_upload_is_an_event_only_on_a_retry(
        moto_bucket: Bucket, skipped: bool, try_number: int, event: bool) -> None:
    from airflow.sdk import Asset, AssetAlias

    from streamify_airflow._lineage import record_asset_events

    class Try:  # what the rule reads of the task instance
        def __init__(self, number: int) -> None:
            self.try_number = number

    alias, exact = AssetAlias("uploads"), Asset(moto_bucket.url("in/a.mp4"))
    events = _outlet_events()
    summary = _summary(moto_bucket, "sftp://u:pw@host/a.mp4?sig=1", skipped=skipped)

    context: Any = {"outlet_events": events, "ti": Try(try_number)}
    attached = record_asset_events([alias, exact], context, summary)

    extra = {"size": 7, "etag": "e", "source": "sftp://u@host/a.mp4", "skipped": skipped}
    added = [(e.dest_asset_key.uri, e.extra) for e in events[alias].asset_alias_events]
    assert (attached, added) == ((["uploads"], [(exact.uri, extra)]) if event else ([], []))
    assert events[exact].extra == extra  # Airflow emits an Asset outlet's event itself


@pytest.mark.timeout(600)
def test_the_scheduler_runs_the_downstream_dag_on_the_ingested_videos(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path) -> None:
    from tests.airflow._services import running_airflow, wait_for

    videos = _videos(tmp_path / "videos")
    connection = json.dumps({"conn_type": "streamify", "host": moto_bucket.endpoint,
                             "extra": {"mode": "direct", "state_location": str(tmp_path)}})
    dags = [ROOT / "example_dags" / f"{dag}.py" for dag in (INGESTION, DOWNSTREAM)]
    with running_airflow(tmp_path / "airflow", {"AIRFLOW_CONN_INGEST": connection},
                         dags=dags) as airflow:
        wait_for("both DAGs to be parsed", lambda: len(airflow.query(
            "select dag_id from serialized_dag where dag_id in (?, ?)",
            INGESTION, DOWNSTREAM)) == 2, airflow)
        conf = {"source": str(videos), "destination": moto_bucket.url("in/"),
                "conn_id": "ingest"}
        airflow.cli("dags", "trigger", INGESTION, "--conf", json.dumps(conf))
        runs = wait_for("an asset-triggered run of the downstream DAG", lambda: airflow.query(
            "select run_id from dag_run where dag_id = ? and run_type = 'asset_triggered' "
            "and state = 'success'", DOWNSTREAM), airflow, timeout=120)
        run_id = runs[0][0]
        [(value,)] = airflow.query("select value from xcom where dag_id = ? and run_id = ? "
                                   "and task_id = 'new_videos'", DOWNSTREAM, run_id)
    listed = json.loads(value)
    # Both uploads may land in one scheduler loop or in two: each run lists its own.
    assert {video["uri"] for video in listed} <= {moto_bucket.url(f"in/{n}") for n in SIZES}
    assert listed and all(video["size"] == SIZES[video["uri"].rsplit("/", 1)[1]]
                          and video["skipped"] is False for video in listed)
