"""A Celery deployment of Airflow on loopback: Debian's redis-server as broker and result
backend, the scheduler on the CeleryExecutor, and ``airflow celery worker`` processes
started by the tests themselves (each with its own environment, so its own connections).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.airflow._services import Airflow, running_airflow, wait_for
from tests.redis_server import REDIS_SERVER, RedisServer

__all__ = ["HEARTBEAT_TIMEOUT", "celery_airflow", "start_worker", "streamify_connection"]

HEARTBEAT_TIMEOUT = 10
"""Seconds without a heartbeat before the scheduler fails a task (and retries it)."""


def _celery(redis: RedisServer) -> dict[str, str]:
    """The CeleryExecutor with ``redis`` as broker (database 0) and result backend (1)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": redis.url.removesuffix("/0") + "/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }


@contextlib.contextmanager
def celery_airflow(home: Path, dags: Sequence[Path], dag_id: str,
                   env: Mapping[str, str] | None = None) -> Iterator[Airflow]:
    """The scheduler, API server and DAG processor of a Celery deployment, its broker
    running, ``dag_id`` parsed; the caller brings the workers. Skips, saying why, when the
    celery extra or redis-server is missing."""
    if importlib.util.find_spec("airflow.providers.celery") is None:
        pytest.skip("Celery tier skipped: the celery extra is not installed "
                    "(bash scripts/setup.sh server,dev,airflow,celery)")
    if not REDIS_SERVER.is_file():
        pytest.skip("redis tier skipped: Debian redis-server is not installed "
                    "(apt-get install redis-server)")
    with RedisServer() as redis, running_airflow(
            home, {**_celery(redis), **(env or {})}, dags=dags) as airflow:
        wait_for("the DAG to be parsed", lambda: airflow.query(
            "select dag_id from serialized_dag where dag_id = ?", dag_id), airflow)
        wait_for("the API server", airflow.answers, airflow)
        yield airflow


def streamify_connection(endpoint: str, state: Path) -> str:
    """A ``streamify`` connection to ``endpoint`` (direct mode), resume state in ``state``."""
    return json.dumps({"conn_type": "streamify", "host": endpoint,
                       "extra": {"mode": "direct", "state_location": str(state)}})


def start_worker(airflow: Airflow, name: str, connection: str, concurrency: int = 1,
                 ) -> subprocess.Popen[bytes]:
    """``airflow celery worker`` named ``name``, ``concurrency`` tasks at a time, with the
    connection ``ingest`` defined as ``connection``."""
    # Logs are read from the shared AIRFLOW_HOME: no log server (each would take port 8793).
    return airflow.start("celery", "worker", "--celery-hostname", f"{name}@%h",
                         "--concurrency", str(concurrency), "--skip-serve-logs",
                         "--without-mingle", "--without-gossip", log=f"worker-{name}.log",
                         env={"AIRFLOW_CONN_INGEST": connection})
