"""Helpers for the Airflow tests: test videos, DAG runs and what they left in the metadata DB."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MiB = 1024 * 1024


def write_video(path: Path, size: int) -> str:
    """A file of ``size`` random bytes at ``path``; returns its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            digest.update(block)
            fh.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TaskTry:
    state: str
    try_number: int


def run_dag(dag_id: str, conf: dict[str, Any]) -> tuple[str, dict[tuple[str, int], TaskTry]]:
    """``dag.test()`` of a freshly parsed ``dag_id`` with ``conf`` (a DAG object run twice
    may hand back its first run); the run's state and each task instance's last try."""
    from tests.airflow.conftest import load_dag

    run = load_dag(dag_id).test(run_conf=conf)
    tries = {(ti.task_id, ti.map_index): TaskTry(str(ti.state), ti.try_number)
             for ti in run.get_task_instances()}
    return str(run.state), tries


def failure_line(capfd: pytest.CaptureFixture[str]) -> str:
    """The message of the ``AirflowFailException`` the task log shows (the last one)."""
    marker = "airflow.sdk.exceptions.AirflowFailException: "
    out = capfd.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.startswith(marker)]
    assert lines, "the task did not fail with AirflowFailException"
    return lines[-1][len(marker):]


def task_output(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """What the tasks run so far logged, whether to a stream or through ``logging``; the
    next call returns only what came after."""
    out = capfd.readouterr()
    text = "\n".join((out.out, out.err, caplog.text))
    caplog.clear()
    return text
