"""Every option of the operator is templated, read after rendering and checked.

The tests' DAGs ``streamify_test_options`` (Jinja renders text) and
``streamify_test_options_native`` (``render_template_as_native_obj``) take each option from
a param. A good set of options must reach the object (its parts, Content-Type and
metadata, as HEAD shows them) and the XCom summary; a bad value must fail the task at once
with one line naming the option, the value and what is accepted.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.airflow._support import MiB, failure_line, run_dag, sha256
from tests.airflow.conftest import set_connection
from tests.conftest import Bucket

DAGS = ("streamify_test_options", "streamify_test_options_native")


@pytest.fixture
def conn(airflow_db: Path, moto_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(monkeypatch, "moto", conn_type="streamify", host=moto_bucket.endpoint)
    return "moto"


def write_mp4(path: Path, size: int) -> str:
    """An MP4's ``ftyp`` box (brand mp42) and random bytes up to ``size``; its SHA-256."""
    import os

    head = struct.pack(">I", 24) + b"ftypmp42\x00\x00\x00\x00mp42isom"
    data = head + os.urandom(size - len(head))
    path.write_bytes(data)
    return sha256(data)


def last_xcom(airflow_db: Path, dag_id: str) -> dict[str, Any]:
    with sqlite3.connect(airflow_db / "airflow.db") as db:
        row = db.execute("select value from xcom where dag_id = ? and task_id = 'upload' "
                         "and key = 'return_value' order by timestamp desc limit 1",
                         (dag_id,)).fetchone()
    value: dict[str, Any] = json.loads(row[0])
    return value


@pytest.mark.parametrize("dag_id", DAGS)
def test_templated_options_reach_the_object_and_the_summary(
        dag_id: str, conn: str, airflow_db: Path, moto_bucket: Bucket, tmp_path: Path) -> None:
    video = tmp_path / "clip.bin"  # the bytes, not the name, say it is an MP4
    digest = write_mp4(video, 11 * MiB)
    conf = {"source": str(video), "destination": moto_bucket.url("o/clip.mp4"),
            "conn_id": conn, "part_size": "5MiB", "concurrency": "3", "checksum": "sha256",
            "bwlimit": "64MiB", "replace": "true", "metadata": {"team": "news", "take": 2},
            "state_location": str(tmp_path / "state"), "progress_interval": "0.5"}

    state, tries = run_dag(dag_id, conf)

    assert state == "success", tries
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="o/clip.mp4",
                                          ChecksumMode="ENABLED")
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"team": "news", "take": "2"}
    assert head["ETag"].endswith('-3"')  # 5 MiB parts: 5 + 5 + 1
    assert "ChecksumSHA256" in head
    assert sha256(moto_bucket.read("o/clip.mp4")) == digest
    summary = last_xcom(airflow_db, dag_id)
    assert (summary["content_type"], summary["metadata"], summary["parts"]) == (
        "video/mp4", {"team": "news", "take": "2"}, 3)
    assert (tmp_path / "state").is_dir(), "state_location was not used"  # hints go when done


def test_a_given_content_type_wins_over_the_sniffed_one(
        conn: str, airflow_db: Path, moto_bucket: Bucket, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_mp4(video, MiB)
    conf = {"source": str(video), "destination": moto_bucket.url("o/clip.mp4"),
            "conn_id": conn, "content_type": "video/vnd.custom"}

    state, _ = run_dag("streamify_test_options", conf)

    assert state == "success"
    head = moto_bucket.client.head_object(Bucket=moto_bucket.name, Key="o/clip.mp4")
    assert head["ContentType"] == "video/vnd.custom"
    assert last_xcom(airflow_db, "streamify_test_options")["content_type"] == "video/vnd.custom"


BAD = {
    "concurrency": ("abc", "concurrency='abc' is not a whole number: give 1 to 64"),
    "part_size": ("sixteen", "part_size='sixteen' is not a size"),
    "bwlimit": ("fast", "bwlimit='fast' is not a size"),
    "checksum": ("md4", "checksum='md4' is not a checksum: give one of none, crc32"),
    "replace": ("maybe", "replace='maybe' is not a boolean"),
    "content_type": ("mp4", "content_type='mp4' is not a media type"),
    "metadata": ("[1, 2]", "is not a mapping"),
    "progress_interval": ("soon", "progress_interval='soon' is not accepted"),
}


@pytest.mark.parametrize("option", sorted(BAD))
def test_a_rendered_option_that_means_nothing_fails_the_task_naming_it(
        option: str, conn: str, moto_bucket: Bucket, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.mp4"
    write_mp4(video, MiB)
    value, expected = BAD[option]
    conf = {"source": str(video), "destination": moto_bucket.url("o/clip.mp4"),
            "conn_id": conn, option: value}

    state, tries = run_dag("streamify_test_options", conf)

    assert state == "failed"
    assert tries[("upload", -1)].try_number == 1
    assert expected in failure_line(capfd)
    assert moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name).get("KeyCount") == 0


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"team name": "x"}, "metadata name 'team name' is not accepted"),
    ({"team": "café"}, "S3 keeps only printable ASCII"),
    ({f"k{i}": "v" * 100 for i in range(25)}, "S3 accepts at most 2048"),
    ({"concurrency": 99}, None),
])
def test_metadata_is_checked_before_anything_is_sent(
        metadata: dict[str, Any], expected: str | None, conn: str, moto_bucket: Bucket,
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.mp4"
    write_mp4(video, MiB)
    conf = {"source": str(video), "destination": moto_bucket.url("o/clip.mp4"),
            "conn_id": conn, "metadata": metadata}

    state, _ = run_dag("streamify_test_options_native", conf)

    if expected is None:  # a name that is also an option's is only metadata
        assert state == "success"
        return
    assert state == "failed"
    assert expected in failure_line(capfd)


@pytest.mark.reals3
def test_content_type_and_metadata_on_radosgw_through_an_aws_connection(
        airflow_db: Path, real_bucket: Bucket, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    set_connection(monkeypatch, "rgw_aws", conn_type="aws",
                   login=os.environ["AWS_ACCESS_KEY_ID"],
                   password=os.environ["AWS_SECRET_ACCESS_KEY"],
                   extra={"endpoint_url": real_bucket.endpoint, "region_name": "us-east-1",
                          "config_kwargs": {"s3": {"addressing_style": "path"}}})
    video = tmp_path / "clip.bin"
    write_mp4(video, 6 * MiB)
    conf = {"source": str(video), "destination": real_bucket.url("o/clip.mp4"),
            "conn_id": "rgw_aws", "metadata": "{\"team\": \"news\"}"}

    state, _ = run_dag("streamify_test_options", conf)

    assert state == "success"
    head = real_bucket.client.head_object(Bucket=real_bucket.name, Key="o/clip.mp4")
    assert (head["ContentType"], head["Metadata"]) == ("video/mp4", {"team": "news"})
