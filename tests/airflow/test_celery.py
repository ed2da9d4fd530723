"""The CeleryExecutor: a worker that dies mid-upload, and the retry on another worker resumes.

Airflow runs as a Celery deployment does, minus the machines: ``airflow api-server``,
``airflow scheduler`` (CeleryExecutor) and ``airflow dag-processor`` on loopback with a
migrated SQLite metadata database, Debian's redis-server as the Celery broker and result
backend, and two ``airflow celery worker`` processes with hostnames of their own, one task
at a time each. A DAG uploads a 40 MiB file throttled by the operator's ``bwlimit``,
through a proxy that counts every part byte on the wire. Once S3 holds a few parts, the
worker running the upload is SIGKILLed with every process under it, as when its machine
dies: nothing reports the task's end. The scheduler finds the task's heartbeat missing
(``[scheduler] task_instance_heartbeat_timeout``, 10 s here), and the retry, which can only
land on the other worker, must complete the same multipart upload byte-identical, never
sending again a part S3 held. With the state location ``shared`` by both workers the retry
finds the upload in the state; with each worker's ``own``, it finds it by listing S3.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tests.airflow._celery import (
    HEARTBEAT_TIMEOUT,
    celery_airflow,
    start_worker,
    streamify_connection,
)
from tests.airflow._services import Airflow, wait_for
from tests.airflow._support import MiB, sha256, write_video
from tests.conftest import Bucket
from tests.wireproxy import WireProxy

pytestmark = [pytest.mark.redis, pytest.mark.timeout(300)]

DAG = Path(__file__).parent / "dags" / "streamify_test_upload.py"
DAG_ID = "streamify_test_throttled"
SIZE = 40 * MiB
PART_SIZE = 5 * MiB  # the DAG's settings
CONCURRENCY = 2
WORKERS = ("alpha", "beta")


def _uploader(port: int) -> psutil.Process | None:
    """The one process (other than this one) with a connection open to ``port``, if any."""
    pids = {c.pid for c in psutil.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.pid and c.pid != os.getpid()}
    assert len(pids) <= 1, f"expected one uploading process, found {pids}"
    return psutil.Process(pids.pop()) if pids else None


def _parts_in_s3(bucket: Bucket, key: str, upload_id: str) -> dict[int, int]:
    listing = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload_id)
    return {part["PartNumber"]: part["Size"] for part in listing.get("Parts", [])}


def _tries(airflow: Airflow, run_id: str) -> list[tuple[str, int]]:
    return airflow.query("select state, try_number from task_instance where dag_id = ? and "
                         "run_id = ? and task_id = 'upload'", DAG_ID, run_id)


def _run_state(airflow: Airflow, run_id: str) -> str | None:
    states = airflow.query("select state from dag_run where run_id = ?", run_id)
    return next((s for (s,) in states if s in ("success", "failed")), None)


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    """The deployment, its DAG parsed: shared by the module's tests, which bring their own
    workers."""
    with celery_airflow(tmp_path_factory.mktemp("celery") / "airflow", [DAG],
                        DAG_ID) as airflow:
        yield airflow


@pytest.mark.parametrize("state", ["shared", "own"])
def test_a_dead_workers_upload_resumes_on_the_other_worker(
        state: str, celery: Airflow, moto_bucket: Bucket, tmp_path: Path) -> None:
    airflow = celery
    started = time.monotonic()
    source = tmp_path / "feature.mp4"
    digest = write_video(source, SIZE)
    key = "films/feature.mp4"
    proxy = WireProxy(moto_bucket.endpoint)
    port = int(proxy.url.rsplit(":", 1)[1])
    states = {name: tmp_path / ("state" if state == "shared" else f"state-{name}")
              for name in WORKERS}
    workers = {name: start_worker(airflow, f"{name}-{state}",
                                  streamify_connection(proxy.url, states[name]))
               for name in WORKERS}
    try:
        run_id = airflow.trigger(DAG_ID, {"source": str(source),
                                          "destination": moto_bucket.url("films/"),
                                          "conn_id": "ingest"})
        upload_id: str = wait_for("the upload to start", lambda: next(
            (u["UploadId"] for u in moto_bucket.open_uploads()), None), airflow, every=0.05)
        uploader = wait_for("the uploading process", lambda: _uploader(port), airflow,
                            every=0.05)
        ancestors = {p.pid for p in uploader.parents()}
        [victim] = [name for name, worker in workers.items() if worker.pid in ancestors]
        wait_for("three parts in S3", lambda: len(
            _parts_in_s3(moto_bucket, key, upload_id)) >= 3, airflow, every=0.1)
        killed = airflow.kill(workers.pop(victim))
        killed_at = time.monotonic()
        time.sleep(1.0)  # let the proxy drain what had left the worker before it died
        held = _parts_in_s3(moto_bucket, key, upload_id)
        before_kill = proxy.part_bytes(upload_id)

        wait_for("the retry", lambda: any(
            s in ("running", "success") and number == 2 for s, number in _tries(
                airflow, run_id)), airflow, timeout=HEARTBEAT_TIMEOUT + 60, every=0.2)
        retried_at = time.monotonic()
        final = wait_for("the DAG run to finish", lambda: _run_state(airflow, run_id),
                         airflow, timeout=120)
        tries = _tries(airflow, run_id)
        [(value,)] = airflow.query("select value from xcom where run_id = ? and task_id = "
                                   "'upload' and key = 'return_value'", run_id)
        retry_log = "\n".join(p.read_text() for p in (airflow.home / "logs").rglob(
            "attempt=2.log") if f"run_id={run_id}" in str(p) and "task_id=upload" in str(p))
        [survivor] = workers
        survivor_log = (airflow.home / f"worker-{survivor}-{state}.log").read_text()
    finally:
        for worker in workers.values():
            airflow.kill(worker)
        proxy.close()

    summary: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    on_wire = proxy.part_bytes(upload_id)
    print(f"\n{state} state: killed worker {victim} ({len(killed)} processes) with "
          f"{len(held)} parts in S3 and {sum(before_kill.values()) / MiB:.1f} MiB on the "
          f"wire; the retry started {retried_at - killed_at:.1f} s later on {survivor}, "
          f"resumed {summary['bytes_resumed'] / MiB:.1f} MiB, sent "
          f"{summary['bytes_sent'] / MiB:.1f} MiB; {time.monotonic() - started:.1f} s in all")
    assert final == "success", tries
    assert tries == [("success", 2)]
    assert uploader.pid in killed
    assert "execute_workload" in survivor_log, survivor_log[-3000:]
    assert sha256(moto_bucket.read(key)) == digest
    assert moto_bucket.open_uploads() == []
    assert summary["upload_id"] == upload_id
    # Every part S3 held when the worker died went over the wire once, never again.
    assert {n: on_wire[n] for n in held} == held
    assert summary["bytes_resumed"] >= sum(held.values())
    assert summary["bytes_sent"] == sum(on_wire.values()) - sum(before_kill.values())
    assert summary["bytes_resumed"] + summary["bytes_sent"] >= SIZE
    assert 0 <= sum(on_wire.values()) - SIZE <= CONCURRENCY * PART_SIZE
    found_by = "state" if state == "shared" else "listing"
    assert f"found by {found_by}" in retry_log, retry_log[-3000:]
