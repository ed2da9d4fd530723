"""Provider registration, the connection's settings, the hook's laziness and progress lines."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from streamify import ConfigError, Destination, HttpControlPlane, Progress, Resumed, Started

import streamify_airflow
from streamify_airflow._progress import ProgressLog
from streamify_airflow._settings import ConnectionSettings
from tests.airflow.conftest import set_connection

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_public_surface_is_pinned() -> None:
    assert streamify_airflow.__all__ == [
        "StreamifyHook", "StreamifyUploadOperator", "TransferSummary", "get_provider_info",
        "task_errors"]
    for name in streamify_airflow.__all__:
        assert getattr(streamify_airflow, name).__name__ == name


def test_airflow_lists_the_provider_and_its_connection_form(airflow_db: Path) -> None:
    listed = subprocess.run([AIRFLOW, "providers", "list"], capture_output=True, text=True,
                            check=True, timeout=120).stdout
    assert any(line.split("|")[0].strip() == "streamify" for line in listed.splitlines())

    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["streamify"]  # type: ignore[no-untyped-call]
    assert hook is not None
    assert (hook.hook_class_name, hook.connection_id_attribute_name, hook.hook_name) == (
        "streamify_airflow.StreamifyHook", "streamify_conn_id", "Streamify")
    manager = ProvidersManager()  # type: ignore[no-untyped-call]
    widgets = manager.connection_form_widgets
    assert {"mode", "region", "state_location", "aws_conn_id"} == {
        widget.field_name for key, widget in widgets.items()
        if key.startswith("extra__streamify__")}
    assert widgets["extra__streamify__mode"].field["schema"]["enum"] == ["direct", "api"]
    behaviour = manager.field_behaviours["streamify"]
    assert behaviour["relabeling"] == {"host": "Endpoint URL", "password": "API key"}
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "port"}


def test_provider_discovery_imports_neither_airflow_nor_boto3() -> None:
    probe = ("import sys, streamify_airflow; info = streamify_airflow.get_provider_info(); "
             "print(info['package-name'], 'airflow' in sys.modules, 'boto3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["streamify", "False", "False"]


class _Conn:
    def __init__(self, conn_type: str | None, host: str | None = None,
                 password: str | None = None, **extra: Any) -> None:
        self.conn_id, self.conn_type, self.host, self.password = "c", conn_type, host, password
        self._extra = extra

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self._extra


def test_settings_from_a_connection() -> None:
    api = ConnectionSettings.from_connection(_Conn(
        "streamify", " http://127.0.0.1:8080 ", "key", mode="api", state_location="s3://b/s/"))
    assert (api.mode, api.endpoint_url, api.api_key, api.state_location) == (
        "api", "http://127.0.0.1:8080", "key", "s3://b/s/")
    direct = ConnectionSettings.from_connection(_Conn("streamify", region="eu-west-1",
                                                      aws_conn_id="aws_default"))
    assert (direct.mode, direct.endpoint_url, direct.region, direct.aws_conn_id) == (
        "direct", None, "eu-west-1", "aws_default")
    via_aws = ConnectionSettings.from_connection(_Conn("aws"))
    assert (via_aws.mode, via_aws.aws_conn_id) == ("direct", "c")


@pytest.mark.parametrize(("conn", "says"), [
    (_Conn("http"), "has type 'http'; Streamify needs a 'streamify' connection"),
    (_Conn("streamify", mode="ftp"), "mode 'ftp' is unknown"),
    (_Conn("streamify", host="127.0.0.1:8080"), "must start with http:// or https://"),
    (_Conn("streamify", host="http://api", mode="api"),
     "lacks the service's endpoint URL or its API key"),
    (_Conn("streamify", host="http://api", password="k", mode="api", aws_conn_id="a"),
     "API mode, which needs no AWS credentials"),
])
def test_a_wrong_connection_says_what_to_fix(conn: _Conn, says: str) -> None:
    with pytest.raises(ConfigError, match="connection 'c'") as caught:
        ConnectionSettings.from_connection(conn)
    assert says in str(caught.value)


def test_the_hook_reads_its_connection_only_when_used(
        airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = streamify_airflow.StreamifyHook("defined_later")
    set_connection(monkeypatch, "defined_later", conn_type="streamify",
                   host="http://127.0.0.1:9", password="k", extra={"mode": "api"})
    plane = hook.get_conn()
    assert isinstance(plane, HttpControlPlane)
    assert plane.endpoint == "http://127.0.0.1:9"
    assert hook.get_conn() is plane


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, event: Any, *args: Any) -> None:
        self.lines.append(event % args)

    def warning(self, event: Any, *args: Any) -> None:
        self.lines.append(event % args)


def test_progress_lines_come_every_interval_and_count_only_what_this_try_sent() -> None:
    now = [0.0]
    log = _Log()
    progress = ProgressLog(log, interval=5.0, clock=lambda: now[0])
    MiB = 1024 * 1024
    progress(Started(Destination("b", "v.mp4"), "u1", 100 * MiB, 10, 10 * MiB))
    progress(Resumed("u1", 40 * MiB, 4, "listing"))
    progress(Progress(40 * MiB, 100 * MiB))
    for second, done in ((1.0, 45), (4.9, 60), (5.0, 60), (7.0, 70), (10.0, 70)):
        now[0] = second
        progress(Progress(done * MiB, 100 * MiB))
    assert log.lines[0] == "uploading 100.0 MiB to s3://b/v.mp4 in 10 parts of 10.0 MiB (upload u1)"
    assert "S3 already holds 40.0 MiB in 4 verified parts (found by listing)" in log.lines[1]
    # At 5 s: 20 MiB sent by this try (the 40 MiB S3 held are not speed), 40 MiB to go.
    assert log.lines[2:] == ["s3://b/v.mp4: 60.0% (60.0 MiB of 100.0 MiB), 4.0 MiB/s, ETA 10s",
                             "s3://b/v.mp4: 70.0% (70.0 MiB of 100.0 MiB), 3.0 MiB/s, ETA 10s"]


def test_progress_logging_works_with_a_standard_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    progress = ProgressLog(logging.getLogger("streamify.test"), interval=0.0)
    progress(Started(Destination("b", "k"), "u", 10, 1, 10))
    assert "uploading 10 B to s3://b/k in 1 part of 10 B (upload u)" in caplog.text
