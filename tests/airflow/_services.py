"""Airflow's services as separate processes on loopback, as a deployment runs them.

``running_airflow`` gives them their own ``AIRFLOW_HOME``, a migrated SQLite database, the
LocalExecutor (every task in its own process) and a DAG folder with the given DAG files,
then starts ``airflow api-server`` and, when asked, ``airflow scheduler`` and ``airflow
dag-processor``; everything is stopped when the block ends. ``Airflow.start`` adds a
process (a Celery worker, with an environment of its own) and ``Airflow.kill`` SIGKILLs one
with every process under it, as when its machine dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil  # type: ignore[import-untyped]

from tests.conftest import free_port

__all__ = ["AIRFLOW", "Airflow", "running_airflow", "wait_for"]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
T = TypeVar("T")


@dataclass
class Airflow:
    """Airflow's services running on loopback with their own home and database."""

    home: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    url: str
    """The API server (and the UI)."""

    def cli(self, *args: str) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        return done.stdout.decode()

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def answers(self) -> bool:
        """Whether the API server answers its health check."""
        try:
            return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the REST API's ``path`` (quicker than the CLI, which takes
        seconds to start); the answer, which must be a success."""
        token = httpx.get(f"{self.url}/auth/token", timeout=30).json()["access_token"]
        answer = httpx.post(f"{self.url}/api/v2/{path}", json=dict(body),
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.is_success, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Trigger a run of ``dag_id``; returns its run id."""
        run_id: str = self.post(f"dags/{dag_id}/dagRuns",
                                {"logical_date": None, "conf": dict(conf)})["dag_run_id"]
        return run_id

    def check_running(self) -> None:
        for process in self.processes:
            assert process.poll() is None, f"{process.args!r} exited: see {self.home}/*.log"

    def start(self, *args: str, log: str, env: Mapping[str, str] | None = None,
              ) -> subprocess.Popen[bytes]:
        """Start one more process of this deployment, ``airflow *args`` (a Celery worker),
        with ``env`` over the deployment's, logging to ``home/log``; it is stopped with
        the others."""
        process = _spawn(args, {**self.env, **(env or {})}, self.home / log)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> list[int]:
        """SIGKILL ``process`` and every process under it at once, as when its machine
        dies (a task runner has a process group of its own, so killing the group is not
        enough); returns their PIDs."""
        self.processes.remove(process)
        tree = [psutil.Process(process.pid)]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += tree[0].children(recursive=True)
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)
        process.wait(10)
        psutil.wait_procs(tree, timeout=10)
        return [member.pid for member in tree]


def wait_for(what: str, probe: Callable[[], T | None], airflow: Airflow,
             timeout: float = 180.0, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        airflow.check_running()
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _spawn(args: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([AIRFLOW, *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


@contextlib.contextmanager
def running_airflow(home: Path, env: dict[str, str], *, dags: Sequence[Path] = (),
                    services: Sequence[str] = ("api-server", "scheduler", "dag-processor"),
                    ) -> Iterator[Airflow]:
    """Migrate a database in ``home``, start ``services``, stop them afterwards."""
    (home / "dags").mkdir(parents=True)
    for dag in dags:
        shutil.copy(dag, home / "dags")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "streamify-tests-only-" + "0" * 32,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        **env,
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in services:
            args = [name, "--host", "127.0.0.1", "--port", str(port)] if (
                name == "api-server") else [name]
            processes.append(_spawn(args, env, home / f"{name}.log"))
        yield Airflow(home, env, processes, f"http://127.0.0.1:{port}")
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


