"""The soak's front ends: one upload run as each kind of user starts it.

=========  ==================================================================  ===========
name       what runs                                                           where
=========  ==================================================================  ===========
cli        ``streamify upload FILE s3://... --json``                           a child
python     ``streamify.upload(path, destination, control=..., state_dir=...)``  this process
fsspec     ``fsspec.open("streamify://bucket/key", "wb")``, written in 1 MiB   this process
           blocks, aborted on an error (as ``StreamedFile`` says)
notebook   ``streamify_notebook.Uploader(path, destination, ...).run()``, the  this process
           kernel side (no browser)
airflow    ``StreamifyUploadOperator`` in the DAG ``streamify_soak``           a child
           (``dags/``), run with ``dag.test()`` on a migrated SQLite database
=========  ==================================================================  ===========

Any of them runs in a child process (``python -m tests.faults._frontends JOB``) when the
soak is to SIGKILL it. Each child gets its own process group, so a kill takes its helpers
with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import streamify

from tests.faults._stack import TOKEN

__all__ = ["FRONT_ENDS", "AirflowHome", "Child", "Job", "Outcome", "run_here"]

FRONT_ENDS = ("cli", "python", "fsspec", "notebook", "airflow")
ROOT = Path(__file__).resolve().parents[2]
_BLOCK = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Job:
    """One run of one upload through one front end."""

    front_end: str
    mode: str
    """``direct`` (S3 with credentials) or ``api`` (through the API service)."""
    source: str
    destination: str
    state: str
    s3_url: str
    api_url: str
    part_size: int
    concurrency: int
    bwlimit: int = 0
    tuning: dict[str, float] = field(default_factory=dict)
    """Further ``UploadConfig`` fields (timeouts, backoff), for the front ends that take
    them from Python; the command and the operator run with their defaults."""

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"part_size": self.part_size,
                                   "concurrency": self.concurrency, **self.tuning}
        if self.bwlimit:
            options["bwlimit"] = self.bwlimit
        return options

    def control(self) -> streamify.ControlPlane:
        if self.mode == "api":
            return streamify.HttpControlPlane(self.api_url, token=TOKEN,
                                              timeout=self.tuning.get("read_timeout", 10.0))
        return streamify.S3ControlPlane(endpoint_url=self.s3_url)


@dataclass
class Outcome:
    completed: bool = False
    error: str = ""
    """The one line the user saw, ``""`` after a completed run."""
    retries: int = 0
    resumes: int = 0
    restarts: int = 0

    def count(self, event: streamify.Event) -> None:
        self.retries += isinstance(event, streamify.Retrying)
        self.resumes += isinstance(event, streamify.Resumed)
        self.restarts += isinstance(event, streamify.Restarted)


# ---------------------------------------------------------------------- in this process
def run_here(job: Job) -> Outcome:
    """Run ``job`` (python, fsspec or notebook) in this process; never raises a
    ``StreamifyError`` (it becomes ``Outcome.error``)."""
    outcome = Outcome()
    runner = {"python": _python, "fsspec": _fsspec, "notebook": _notebook}[job.front_end]
    try:
        outcome.completed = runner(job, outcome.count)
    except streamify.StreamifyError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def _python(job: Job, count: Callable[[streamify.Event], None]) -> bool:
    control = job.control()
    try:
        result = streamify.upload(job.source, job.destination, control=control,
                                  state_dir=job.state, on_event=count, **job.options())
    finally:
        control.close()
    return result.status == "completed"


def _fsspec(job: Job, count: Callable[[streamify.Event], None]) -> bool:
    import fsspec

    where: dict[str, Any] = ({"api_url": job.api_url, "token": TOKEN} if job.mode == "api"
                             else {"endpoint_url": job.s3_url})
    url = "streamify://" + job.destination.removeprefix("s3://")
    with open(job.source, "rb") as source, fsspec.open(
            url, "wb", skip_instance_cache=True, state_dir=job.state, **where,
            **job.options()) as sink:
        try:
            while block := source.read(_BLOCK):
                sink.write(block)
        except BaseException:
            # fsspec's context manager closes (completes) the file whatever happened; the
            # streamify:// file says to abort it on errors, so that no part of it remains.
            sink.abort()
            raise
    return True


def _notebook(job: Job, count: Callable[[streamify.Event], None]) -> bool:
    from streamify_notebook import Uploader

    control = job.control()
    try:
        widget = Uploader(job.source, job.destination, control=control, state_dir=job.state,
                          **job.options())
        try:
            return widget.run().status == "completed"
        finally:
            widget.close()
    finally:
        control.close()


# ---------------------------------------------------------------------- Airflow
class AirflowHome:
    """An ``AIRFLOW_HOME`` for the soak: the DAG folder holding ``dags/streamify_soak.py``
    and a SQLite metadata database, migrated once, on first use (about 15 s)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ready = False

    def env(self, job: Job) -> dict[str, str]:
        home = self.directory
        connection = {"conn_type": "streamify",
                      "host": job.api_url if job.mode == "api" else job.s3_url,
                      "extra": {"mode": job.mode, "state_location": job.state}}
        if job.mode == "api":
            connection["password"] = TOKEN
        return {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "AIRFLOW_CONN_SOAK": json.dumps(connection)}

    def prepare(self, job: Job) -> None:
        if self._ready:
            return
        (self.directory / "dags").mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parent / "dags" / "streamify_soak.py",
                    self.directory / "dags" / "streamify_soak.py")
        subprocess.run([sys.executable, "-W", "ignore", "-c",
                        "from airflow.utils.db import initdb; initdb()"],
                       env={**os.environ, **self.env(job)}, capture_output=True, check=True,
                       timeout=300)
        self._ready = True


def _airflow(job: Job) -> bool:
    """``dag.test()`` of ``streamify_soak`` (in a child whose environment names the home)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    run = bag.dags["streamify_soak"].test(run_conf={
        "source": job.source, "destination": job.destination, "conn_id": "soak",
        "part_size": str(job.part_size), "concurrency": str(job.concurrency),
        "bwlimit": str(job.bwlimit or "")})
    return str(run.state) == "success"


# ---------------------------------------------------------------------- in a child
class Child:
    """``job`` running in a process group of its own: ``kill()`` is SIGKILL to all of it,
    ``outcome()`` waits for it and reads what it said."""

    def __init__(self, job: Job, airflow: AirflowHome | None) -> None:
        self.job = job
        self.killed = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
        if job.front_end == "cli":
            command = [sys.executable, "-m", "streamify", "upload", job.source,
                       job.destination, "--json", "--no-progress",
                       "--part-size", str(job.part_size),
                       "--concurrency", str(job.concurrency)]
            if job.bwlimit:
                command += ["--bwlimit", str(job.bwlimit)]
            if job.mode == "api":
                command += ["--api", job.api_url]
                env["STREAMIFY_TOKEN"] = TOKEN
            else:
                command += ["--endpoint-url", job.s3_url]
            env["STREAMIFY_STATE_DIR"] = job.state
        else:
            command = [sys.executable, "-W", "ignore", "-m", "tests.faults._frontends",
                       json.dumps(asdict(job))]
            if job.front_end == "airflow":
                assert airflow is not None
                airflow.prepare(job)
                env.update(airflow.env(job))
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.killed = True

    def outcome(self, timeout: float = 900.0) -> Outcome:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.process.communicate()
            return Outcome(error=f"no end after {timeout:.0f} s (killed)")
        if self.killed:
            return Outcome(error="SIGKILL")
        if self.job.front_end == "cli":
            if self.process.returncode == 0:
                return Outcome(completed=True)
            return Outcome(error=_last_line(err) or f"exit status {self.process.returncode}")
        said = _last_line(out)
        if said.startswith("{"):
            return Outcome(**json.loads(said))
        return Outcome(error=_airflow_failure(out + err)
                       or f"exit status {self.process.returncode}: {_last_line(err)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _airflow_failure(log: str) -> str:
    """The failing task's exception line, as the task log shows it."""
    markers = ("AirflowFailException: ", "AirflowException: ")
    found = [line for line in log.splitlines() if any(m in line for m in markers)]
    if not found:
        return ""
    line = found[-1]
    for marker in markers:
        if marker in line:
            return marker.strip() + " " + line.split(marker, 1)[1].strip()
    return line


def main(argv: list[str]) -> int:
    job = Job(**json.loads(argv[0]))
    if job.front_end == "airflow":
        completed = _airflow(job)
        outcome = Outcome(completed=completed)
        if not completed:
            return 1  # the parent reads the task's error from its log
    else:
        outcome = run_here(job)
    print(json.dumps(asdict(outcome)), flush=True)
    return 0 if outcome.completed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
