"""A real Airflow 3.3 for the provider's tests.

Airflow reads its configuration once, at import, so the environment is set here, before
anything imports it: a temporary ``AIRFLOW_HOME`` with a SQLite metadata database that is
migrated once per session, and a DAG folder holding copies of ``example_dags/`` and the
tests' own small DAG (``dags/``). Connections come from ``AIRFLOW_CONN_*`` variables (JSON),
set per test with ``monkeypatch``.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(tempfile.mkdtemp(prefix="streamify-airflow-"))
DAGS = HOME / "dags"
atexit.register(shutil.rmtree, HOME, True)

os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
})

AIRFLOW_MISSING = importlib.util.find_spec("airflow") is None
_INSTALL = "bash scripts/setup.sh server,dev,airflow"
if AIRFLOW_MISSING:
    if "airflow" in os.environ.get("STREAMIFY_REQUIRE_TIERS", "").split(","):
        raise pytest.UsageError(f"the Airflow tier must run but Airflow is missing: {_INSTALL}")
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header() -> str | None:
    if AIRFLOW_MISSING:
        return f"Airflow tier skipped: the airflow extra is not installed ({_INSTALL})"
    return None

# Airflow and its dependencies warn at import about things this project does not control.
_AIRFLOW_WARNINGS = (
    "ignore::DeprecationWarning",
    "ignore::PendingDeprecationWarning",
    "ignore:Using `httpx` with `starlette.testclient`:UserWarning",
    "ignore:Could not import graphviz:UserWarning",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.airflow)
            for spec in _AIRFLOW_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The migrated metadata database and the DAG folder (``AIRFLOW_HOME``)."""
    DAGS.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((ROOT / "example_dags").glob("*.py")),
                   *sorted((Path(__file__).parent / "dags").glob("*.py"))]:
        shutil.copy(source, DAGS / source.name)
    from airflow.utils.db import initdb

    initdb()
    return HOME


def load_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` as Airflow parses it from the DAG folder, freshly parsed: a run
    may leave its conf in the DAG object's params."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    """Define the Airflow connection ``conn_id`` (JSON in ``AIRFLOW_CONN_<ID>``)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
