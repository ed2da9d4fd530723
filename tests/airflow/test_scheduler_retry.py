"""A real scheduler retries a SIGKILLed upload in a new process, which resumes it.

Airflow runs as it does in production, minus the machines: ``airflow api-server``,
``airflow scheduler`` (LocalExecutor: every task in its own process) and ``airflow
dag-processor`` on loopback, with their own migrated SQLite database. The example
ingestion DAG (``retries=1``) is triggered for one 256 MiB video, through a proxy that
counts every part byte on the wire. At about half, the process holding the upload's
connections is SIGKILLed and the local resume state is deleted. Airflow's retry must find
the same multipart upload in S3, send at most ``concurrency x part size`` bytes again, and
complete a byte-identical object.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.airflow._services import Airflow, running_airflow, wait_for
from tests.airflow._support import MiB, sha256, write_video
from tests.conftest import Bucket
from tests.wireproxy import WireProxy

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "streamify_video_ingestion"
PART_SIZE = 16 * MiB  # the example DAG's settings
CONCURRENCY = 4
SIZE = 256 * MiB


def _connection_holder(port: int) -> psutil.Process | None:
    """The one process (other than this one) with a connection open to ``port``, if any."""
    pids = {c.pid for c in psutil.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.pid and c.pid != os.getpid()}
    assert len(pids) <= 1, f"expected one uploading process, found {pids}"
    return psutil.Process(pids.pop()) if pids else None


def _upload_tries(airflow: Airflow, run_id: str) -> list[tuple[str, int]]:
    return airflow.query("select state, try_number from task_instance where dag_id = ? and "
                         "run_id = ? and task_id = 'upload'", DAG_ID, run_id)


@pytest.mark.timeout(900)
def test_a_killed_upload_is_retried_by_the_scheduler_and_resumes(
        airflow_db: Path, moto_bucket: Bucket, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    digest = write_video(videos / "feature.mp4", SIZE)
    state = tmp_path / "state"
    proxy = WireProxy(moto_bucket.endpoint)
    port = int(proxy.url.rsplit(":", 1)[1])
    connection = json.dumps({"conn_type": "streamify", "host": proxy.url,
                             "extra": {"mode": "direct", "state_location": str(state)}})
    with running_airflow(tmp_path / "airflow", {"AIRFLOW_CONN_INGEST": connection},
                         dags=[ROOT / "example_dags" / f"{DAG_ID}.py"]) as airflow:
        wait_for("the DAG to be parsed", lambda: airflow.query(
            "select dag_id from serialized_dag where dag_id = ?", DAG_ID), airflow)
        conf = {"source": str(videos), "destination": moto_bucket.url("films/"),
                "conn_id": "ingest"}
        airflow.cli("dags", "trigger", DAG_ID, "--conf", json.dumps(conf))
        upload_id: str = wait_for("the upload to start", lambda: next(
            (u["UploadId"] for u in moto_bucket.open_uploads()), None), airflow, every=0.05)
        # Found first: listing every process's sockets takes long enough to miss half.
        victim = wait_for("the uploading process", lambda: _connection_holder(port), airflow,
                          every=0.05)
        command = " ".join(victim.cmdline())
        wait_for("half of the video on the wire", lambda: sum(
            proxy.part_bytes(upload_id).values()) >= SIZE // 2, airflow, every=0.01)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(10)
        time.sleep(1.0)  # let the proxy drain what had left the process before it died
        before_kill = sum(proxy.part_bytes(upload_id).values())
        shutil.rmtree(state)

        run_id = airflow.query("select run_id from dag_run where dag_id = ?", DAG_ID)[0][0]
        wait_for("the retry", lambda: any(
            state in ("running", "success") and number == 2
            for state, number in _upload_tries(airflow, run_id)), airflow, every=0.2)
        retry_started = time.monotonic()
        final = wait_for("the DAG run to finish", lambda: next(
            (s for (s,) in airflow.query("select state from dag_run where run_id = ?", run_id)
             if s in ("success", "failed")), None), airflow, timeout=600)
        finished = time.monotonic()
        tries = _upload_tries(airflow, run_id)
        retry_log = "\n".join(p.read_text() for p in (airflow.home / "logs").rglob(
            "attempt=2.log") if "task_id=upload" in str(p))
    proxy.close()

    assert command.startswith("airflow worker -- "), command  # the task's own process
    assert final == "success", tries
    assert tries == [("success", 2)]
    assert sha256(moto_bucket.read("films/feature.mp4")) == digest
    assert moto_bucket.open_uploads() == []
    manifest = json.loads(moto_bucket.read("films/manifest.json"))["videos"]
    assert [(v["key"], v["size"], v["skipped"]) for v in manifest] == [
        ("films/feature.mp4", SIZE, False)]
    on_wire = sum(proxy.part_bytes(upload_id).values())
    sent_by_retry = on_wire - before_kill
    resent = on_wire - SIZE
    # The retry sent only into the upload the killed process had started, and only what
    # S3 did not hold: at most the parts that were in flight when the process died.
    assert sent_by_retry == manifest[0]["bytes_sent"]
    assert manifest[0]["bytes_resumed"] + manifest[0]["bytes_sent"] >= SIZE
    assert manifest[0]["bytes_resumed"] >= before_kill - CONCURRENCY * PART_SIZE
    assert 0 <= resent <= CONCURRENCY * PART_SIZE
    assert "found by listing" in retry_log
    print(f"\nkilled {command!r} with {before_kill / MiB:.1f} MiB of {SIZE / MiB:.0f} MiB on "
          f"the wire; the retry started {retry_started - killed_at:.1f} s later, resumed "
          f"{manifest[0]['bytes_resumed'] / MiB:.1f} MiB, sent {sent_by_retry / MiB:.1f} MiB "
          f"({resent / MiB:.1f} MiB of it a second time) and finished "
          f"{finished - retry_started:.1f} s after it started")
