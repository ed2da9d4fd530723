"""Mapped bulk ingestion on the CeleryExecutor: one mapped task per file under a pool, a
worker killed mid-run, every object byte-identical.

The DAG ``streamify_test_mapped`` (``dags/streamify_test_mapped.py``) lists a folder and
maps ``StreamifyUploadOperator`` over its files with ``.expand(source=...)``, every mapped
task in the pool ``streamify_mapped`` of ``SLOTS`` slots. Two ``airflow celery worker``
processes take ``WORKER_CONCURRENCY`` tasks each, more than the pool's slots, so only the
pool holds the run back. One file in ten is 12 MiB, sent one 5 MiB part at a time at
``BWLIMIT``; the others are small. Once a worker's task is half-way through such a
multipart upload (S3 holds a part of it, the task still has the file open), that worker is
SIGKILLed with every process under it. The scheduler fails its tasks when their heartbeat
stops (10 s) and retries them on the other worker. The run must succeed; every object must
hash as its file; no multipart upload may stay open; the retry of the killed upload must
resume it (same upload id, the held parts not sent again); and the task instances' running
intervals (every try's start and end) never overlap more than the pool's slots.

``FILES`` files in CI (about 80 s with the deployment's start, on 2 busy cores);
``STREAMIFY_MAPPED_FILES=500`` runs the same test at 500 files.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tests.airflow._celery import celery_airflow, start_worker, streamify_connection
from tests.airflow._services import Airflow, wait_for
from tests.airflow._support import MiB, sha256
from tests.conftest import Bucket

FILES = int(os.environ.get("STREAMIFY_MAPPED_FILES", "40"))
pytestmark = [pytest.mark.redis, pytest.mark.timeout(300 + 3 * FILES)]

DAG = Path(__file__).parent / "dags" / "streamify_test_mapped.py"
DAG_ID = "streamify_test_mapped"
POOL = "streamify_mapped"  # the DAG's
SLOTS = 4
WORKER_CONCURRENCY = 4
WORKERS = ("alpha", "beta")
BIG = 12 * MiB
BWLIMIT = "8MiB"
PREFIX = "mapped/"


def _write_files(folder: Path) -> dict[str, str]:
    """``FILES`` files, one in ten of ``BIG`` bytes (the first among them), the others of
    1 KiB to 512 KiB; each file's SHA-256 by name."""
    folder.mkdir()
    digests = {}
    for index in range(FILES):
        size = BIG if index % 10 == 0 else 1024 * (1 + index * 37 % 512)
        data = os.urandom(size)
        name = f"{index:04d}.bin"
        (folder / name).write_bytes(data)
        digests[name] = sha256(data)
    return digests


def _parts_held(bucket: Bucket, key: str, upload_id: str) -> dict[int, int]:
    listing = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload_id)
    return {part["PartNumber"]: part["Size"] for part in listing.get("Parts", [])}


def _mid_upload(workers: dict[str, subprocess.Popen[bytes]], folder: Path,
                bucket: Bucket) -> tuple[str, str, str] | None:
    """(worker, key, upload id) of a multipart upload that S3 holds a part of while a
    task of that worker still has its file open, if there is one."""
    uploads = {upload["Key"]: upload["UploadId"] for upload in bucket.open_uploads()}
    if not uploads:
        return None
    for name, worker in workers.items():
        for process in psutil.Process(worker.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                for opened in process.open_files():
                    path = Path(opened.path)
                    key = PREFIX + path.name
                    if path.parent == folder and key in uploads and _parts_held(
                            bucket, key, uploads[key]):
                        return name, key, uploads[key]
    return None


def _most_at_once(intervals: list[tuple[str, str]]) -> int:
    """The most intervals (ISO start, end) open at one instant; an end before a start at
    the same instant."""
    events = sorted([(datetime.fromisoformat(start), 1) for start, _ in intervals]
                    + [(datetime.fromisoformat(end), -1) for _, end in intervals])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def _run_state(airflow: Airflow, run_id: str) -> str | None:
    states = airflow.query("select state from dag_run where run_id = ?", run_id)
    return next((s for (s,) in states if s in ("success", "failed")), None)


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    """The deployment with the pool of ``SLOTS`` slots; Airflow's own limits (parallelism,
    tasks per DAG) above the two workers' slots."""
    with celery_airflow(tmp_path_factory.mktemp("mapped") / "airflow", [DAG], DAG_ID, env={
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
            # A task the dead worker had taken but not yet started is queued again.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "2"}) as airflow:
        airflow.post("pools", {"name": POOL, "slots": SLOTS, "include_deferred": False})
        yield airflow


def test_mapped_ingestion_survives_a_dead_worker_within_the_pool(
        celery: Airflow, moto_bucket: Bucket, tmp_path: Path) -> None:
    airflow = celery
    started = time.monotonic()
    folder = tmp_path / "incoming"
    digests = _write_files(folder)
    connection = streamify_connection(moto_bucket.endpoint, tmp_path / "state")
    workers = {name: start_worker(airflow, name, connection, WORKER_CONCURRENCY)
               for name in WORKERS}
    try:
        run_id = airflow.trigger(DAG_ID, {"folder": str(folder), "bwlimit": BWLIMIT,
                                          "concurrency": "1",
                                          "destination": moto_bucket.url(PREFIX)})
        victim, key, upload_id = wait_for("a multipart upload half-way", lambda: _mid_upload(
            workers, folder, moto_bucket), airflow, every=0.1)
        held = _parts_held(moto_bucket, key, upload_id)
        killed = airflow.kill(workers.pop(victim))
        killed_at = time.monotonic() - started
        final = wait_for("the DAG run to finish", lambda: _run_state(airflow, run_id),
                         airflow, timeout=120 + 3 * FILES)
    finally:
        for worker in workers.values():
            airflow.kill(worker)
    seconds = time.monotonic() - started
    tries = airflow.query("select map_index, state, try_number from task_instance where "
                          "run_id = ? and task_id = 'upload'", run_id)
    running = airflow.query(
        "select start_date, end_date from task_instance where run_id = ? and task_id = "
        "'upload' and start_date is not null union all select start_date, end_date from "
        "task_instance_history where run_id = ? and task_id = 'upload' and start_date is "
        "not null", run_id, run_id)
    index = int(key.removeprefix(PREFIX).removesuffix(".bin"))
    [(value,)] = airflow.query("select value from xcom where run_id = ? and task_id = "
                               "'upload' and map_index = ? and key = 'return_value'",
                               run_id, index)
    summary: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    retried = sorted(i for i, _, number in tries if number > 1)
    most = _most_at_once(running)
    print(f"\n{FILES} files: killed worker {victim} ({len(killed)} processes) at "
          f"{killed_at:.1f} s, {len(held)} parts of {key} in S3; {len(retried)} tasks "
          f"retried; at most {most} running at once (pool: {SLOTS}); {seconds:.1f} s in all")
    assert final == "success", [t for t in tries if t[1] != "success"]
    assert sorted(tries) == sorted((i, "success", n) for i, _, n in tries)
    assert len(tries) == FILES
    assert index in retried
    assert summary["upload_id"] == upload_id
    assert summary["bytes_resumed"] >= sum(held.values())
    assert {name: sha256(moto_bucket.read(PREFIX + name)) for name in digests} == digests
    assert moto_bucket.open_uploads() == []
    assert most <= SLOTS
