"""What a retry cannot fix fails the task at once, with one line saying what to fix.

Each case runs the tests' one-operator DAG (``retries=1``) with ``dag.test()``: the task
must fail on its first try with ``AirflowFailException`` and the core's message. The last
case is the counterpart: storage that cannot be reached may come back, so that task is
retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow._support import failure_line, run_dag
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket, free_port
from tests.server.conftest import TOKENS, Api, running_api


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x01" * 1000)
    return path


@pytest.fixture
def api(moto_bucket: Bucket) -> Iterator[Api]:
    with running_api(moto_bucket) as running:
        yield running


def _fails_once(conf: dict[str, str], capfd: pytest.CaptureFixture[str]) -> str:
    """Run the DAG; assert the task failed without a retry; return its failure line."""
    state, tries = run_dag("streamify_test_upload", conf)
    assert state == "failed"
    assert tries[("upload", -1)].state == "failed"
    assert tries[("upload", -1)].try_number == 1, "the task was retried"
    return failure_line(capfd)


def test_a_missing_connection_names_the_connection_to_create(
        airflow_db: Path, video: Path, capfd: pytest.CaptureFixture[str]) -> None:
    line = _fails_once({"source": str(video), "destination": "s3://videos/clip.mp4",
                        "conn_id": "no_such_connection"}, capfd)
    assert line == ("connection 'no_such_connection' is not defined: create it (type "
                    "'streamify') or set AIRFLOW_CONN_NO_SUCH_CONNECTION")


def test_a_connection_with_an_unknown_mode_says_which_modes_exist(
        airflow_db: Path, video: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "sideways", conn_type="streamify", extra={"mode": "sideways"})
    line = _fails_once({"source": str(video), "destination": "s3://videos/clip.mp4",
                        "conn_id": "sideways"}, capfd)
    assert line.startswith("connection 'sideways': mode 'sideways' is unknown; set its mode "
                           "to 'direct'")


def test_a_missing_aws_connection_is_named_not_replaced_by_default_credentials(
        airflow_db: Path, video: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "via_aws", conn_type="streamify",
                   extra={"aws_conn_id": "no_such_aws"})
    line = _fails_once({"source": str(video), "destination": "s3://videos/clip.mp4",
                        "conn_id": "via_aws"}, capfd)
    assert line == ("connection 'via_aws' names the AWS connection 'no_such_aws', which is "
                    "not defined: create it or fix the name")


def test_a_wrong_api_key_is_refused_without_retrying(
        airflow_db: Path, video: Path, api: Api, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "wrong_key", conn_type="streamify", host=api.url,
                   password="not-" + TOKENS["alice"], extra={"mode": "api"})
    line = _fails_once({"source": str(video), "destination": api.bucket.url("users/alice/c.mp4"),
                        "conn_id": "wrong_key"}, capfd)
    assert "refused" in line and "users/alice/c.mp4" in line
    assert api.bucket.open_uploads() == []


def test_a_missing_source_is_named(
        airflow_db: Path, tmp_path: Path, moto_bucket: Bucket, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "moto", conn_type="streamify", host=moto_bucket.endpoint)
    missing = tmp_path / "gone.mp4"
    line = _fails_once({"source": str(missing), "destination": moto_bucket.url("v/"),
                        "conn_id": "moto"}, capfd)
    assert str(missing) in line


def test_a_destination_outside_the_principals_prefix_is_refused(
        airflow_db: Path, video: Path, api: Api, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "alice", conn_type="streamify", host=api.url,
                   password=TOKENS["alice"], extra={"mode": "api"})
    line = _fails_once({"source": str(video), "destination": api.bucket.url("users/bob/c.mp4"),
                        "conn_id": "alice"}, capfd)
    assert "users/bob/c.mp4" in line
    assert api.bucket.open_uploads() == []


def test_unreachable_storage_is_retried(
        airflow_db: Path, video: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    set_connection(monkeypatch, "nowhere", conn_type="streamify",
                   host=f"http://127.0.0.1:{free_port()}")
    state, tries = run_dag("streamify_test_upload",
                           {"source": str(video), "destination": "s3://videos/clip.mp4",
                            "conn_id": "nowhere"})
    assert state == "failed"
    assert tries[("upload", -1)].try_number == 2, "the task was not retried"
    out = capfd.readouterr()
    assert "cannot reach S3" in out.out + out.err
    assert "AirflowFailException" not in out.out + out.err
