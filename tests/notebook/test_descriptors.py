"""The notebook front end closes what it opens: a kernel may upload thousands of files."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")

from streamify import S3ControlPlane

from streamify_notebook import Uploader, upload
from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def files_open() -> set[str]:
    """What this process's descriptors name (moto's server, in this process, has some)."""
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            names.add(os.readlink(f"/proc/self/fd/{fd}"))
    return names


@pytest.fixture
def row(tmp_path: Path) -> Path:
    path = tmp_path / "row.csv"
    path.write_bytes(b"frame,score\n1,0.5\n")
    return path


def test_two_thousand_uploads_in_one_kernel_leave_no_descriptor_open(
        moto_bucket: Bucket, row: Path, state_dir: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    control = S3ControlPlane(endpoint_url=moto_bucket.endpoint)
    try:
        upload(row, moto_bucket.url("rows/0.csv"), control=control)
        before = open_descriptors()
        for number in range(1, 2000):
            upload(row, moto_bucket.url(f"rows/{number}.csv"), control=control)
            capsys.readouterr()  # each call displays its widget
        # A leak would show as thousands; a few are moto's, in this process, still
        # closing a connection.
        assert open_descriptors() <= before + 5
    finally:
        control.close()
    assert moto_bucket.read("rows/1999.csv") == row.read_bytes()


def test_uploads_close_the_s3_client_they_made(
        real_bucket: Bucket, row: Path, state_dir: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # radosgw keeps connections open (moto closes each one), so a client left open shows.
    upload(row, real_bucket.url("rows/0.csv"), endpoint_url=real_bucket.endpoint)
    before = open_descriptors()
    for number in range(1, 20):
        upload(row, real_bucket.url(f"rows/{number}.csv"), endpoint_url=real_bucket.endpoint)
        capsys.readouterr()
    assert open_descriptors() <= before + 5  # a leak shows as 19 or more


def test_closing_a_paused_widget_gives_its_file_back(
        moto_bucket: Bucket, tmp_path: Path, state_dir: str) -> None:
    source = make_file(tmp_path / "video.bin", 12 * MiB)
    widget = Uploader(source, moto_bucket.url("video.bin"), endpoint_url=moto_bucket.endpoint,
                      part_size="5MiB", bwlimit="4MiB", concurrency=1)
    widget.start()
    deadline = time.monotonic() + 30
    while widget.bytes_done < 5 * MiB and time.monotonic() < deadline:
        time.sleep(0.02)
    widget.pause()
    widget.wait(30)
    assert widget.status == "paused"
    assert str(source) in files_open()  # Resume reads on from it
    widget.close()
    widget.close()
    assert str(source) not in files_open()
    assert moto_bucket.open_uploads() != []  # paused, not aborted: a new widget resumes it


def test_a_widget_whose_construction_failed_is_collected_quietly() -> None:
    # ipywidgets closes a widget when it is collected: close() must not trip on what
    # the failed construction never set. (An error there would fail this test.)
    with pytest.raises(TypeError):
        Uploader(123, "s3://bucket/key")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="part_size"):
        Uploader("clip.mp4", "s3://bucket/key", part_size="lots")
    gc.collect()


def test_the_browser_widget_closes_the_client_it_made_and_only_that(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streamify_notebook import BrowserUploader

    closed: list[S3ControlPlane] = []
    monkeypatch.setattr(S3ControlPlane, "close", lambda plane: closed.append(plane))
    made = BrowserUploader("s3://bkt/drop/", endpoint_url="http://127.0.0.1:9")
    made.close()
    made.close()
    assert closed == [made.control]

    given = S3ControlPlane(endpoint_url="http://127.0.0.1:9")
    BrowserUploader("s3://bkt/drop/", control=given).close()
    assert closed == [made.control]
