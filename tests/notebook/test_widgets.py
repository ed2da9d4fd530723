"""The widgets' state and their calls into the core, against moto's server on loopback.

No browser here: ``Uploader`` is driven through its methods (what its buttons call);
``BrowserUploader``'s kernel side is in ``test_browser_widget``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
from streamify import Destination, HttpControlPlane, S3ControlPlane

from streamify_notebook import Uploader, upload
from tests.conftest import Bucket
from tests.helpers import make_file
from tests.server.conftest import PREFIXES, TOKENS, running_api

MiB = 1024 * 1024


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the widget")
        time.sleep(0.02)


def finished(widget: Uploader) -> bool:
    return not widget.running and widget.status not in ("starting", "uploading", "pausing")


def close_after_its_look(widget: Uploader) -> None:
    """Close ``widget``, which waits for the look at what S3 holds that making it began
    (the look asks S3 through the client ``close`` releases): only after that look does
    a widget still "ready" mean that it found nothing to resume."""
    widget.close()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path: Path = make_file(tmp_path / "video.bin", 12 * MiB + 123)
    return path


def kernel_uploader(bucket: Bucket, source: Path, key: str, **options: Any) -> Uploader:
    return Uploader(source, bucket.url(key), endpoint_url=bucket.endpoint,
                    part_size="5MiB", **options)


def test_uploader_runs_in_the_background_and_reports_progress(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    widget = kernel_uploader(moto_bucket, source, "a/video.bin")
    seen: list[int] = []
    widget.observe(lambda change: seen.append(change["new"]), names="bytes_done")
    widget.start()
    assert widget.running or widget.status == "completed"
    result = widget.wait(60)
    assert result is not None and result.status == "completed"
    assert widget.status == "completed" and widget.error == ""
    assert widget.bytes_done == widget.total_bytes == source.stat().st_size
    assert seen == sorted(seen) and seen[-1] == source.stat().st_size
    assert "uploaded 12.0 MiB" in widget.detail
    assert moto_bucket.read("a/video.bin") == source.read_bytes()


def test_pause_holds_then_resume_sends_only_the_rest(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    widget = kernel_uploader(moto_bucket, source, "paused.bin", bwlimit="4MiB", concurrency=1)
    widget.start()
    wait_for(lambda: widget.bytes_done >= 5 * MiB)
    widget.pause()
    wait_for(lambda: finished(widget))
    assert widget.status == "paused"
    held = widget.bytes_done
    time.sleep(0.5)
    assert widget.bytes_done == held and 5 * MiB <= held < source.stat().st_size
    assert "paused at" in widget.detail
    widget.start()
    result = widget.wait(60)
    assert result is not None and result.status == "completed"
    assert result.bytes_resumed >= 5 * MiB
    assert result.bytes_sent == source.stat().st_size - result.bytes_resumed
    assert moto_bucket.read("paused.bin") == source.read_bytes()


def test_a_new_widget_for_the_same_file_resumes_like_after_a_kernel_restart(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    first = kernel_uploader(moto_bucket, source, "restart.bin", bwlimit="4MiB", concurrency=1)
    first.start()
    wait_for(lambda: first.bytes_done >= 5 * MiB)
    first.pause()
    wait_for(lambda: finished(first))
    listed = S3ControlPlane(endpoint_url=moto_bucket.endpoint).list_parts(
        Destination(moto_bucket.name, "restart.bin"), first.upload_id)
    present = sum(part.size for part in listed)

    again = kernel_uploader(moto_bucket, source, "restart.bin")
    wait_for(lambda: again.status == "paused")  # before Start: what S3 already holds
    assert (again.bytes_done, again.total_bytes) == (present, source.stat().st_size)
    assert again.upload_id == first.upload_id
    assert "holds" in again.detail and "press Resume" in again.detail
    starts: list[int] = []
    details: list[str] = []
    again.observe(lambda change: starts.append(change["new"]), names="bytes_done")
    again.observe(lambda change: details.append(change["new"]), names="detail")
    again.start()
    result = again.wait(60)
    assert result is not None and result.resumed and result.upload_id == first.upload_id
    assert result.bytes_resumed == present and starts[0] >= present
    assert any(line.startswith(f"resumed: {present / MiB:.1f} MiB (") and
               line.endswith("were already in S3") for line in details), details
    assert moto_bucket.read("restart.bin") == source.read_bytes()


def test_uploader_reads_an_fsspec_url(moto_bucket: Bucket, state_dir: str) -> None:
    import fsspec

    data = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts
    with fsspec.open("memory://notebook/clip.bin", "wb") as out:
        out.write(data)
    widget = Uploader("memory://notebook/clip.bin", moto_bucket.url("from-url.bin"),
                      endpoint_url=moto_bucket.endpoint, part_size="5MiB")
    assert widget.choices == []
    widget.start()
    result = widget.wait(60)
    assert result is not None and result.parts == 2, widget.error
    assert moto_bucket.read("from-url.bin") == data


def test_uploader_goes_through_the_api_service_with_a_token(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    with running_api(moto_bucket) as api:
        key = PREFIXES["alice"] + "via-api.bin"
        widget = Uploader(source, moto_bucket.url(key), part_size="5MiB",
                          control=HttpControlPlane(api.url, token=TOKENS["alice"]))
        widget.start()
        result = widget.wait(60)
        assert result is not None and widget.status == "completed", widget.error
        assert moto_bucket.read(key) == source.read_bytes()

        refused = Uploader(source, moto_bucket.url(PREFIXES["bob"] + "not-mine.bin"),
                           control=HttpControlPlane(api.url, token=TOKENS["alice"]))
        refused.start()
        refused.wait(60)
        assert refused.status == "failed"
        assert refused.error.startswith("The API service refused access"), refused.error


def test_a_paused_upload_found_after_a_restart_can_be_cancelled(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    first = kernel_uploader(moto_bucket, source, "found.bin", bwlimit="4MiB", concurrency=1)
    first.start()
    wait_for(lambda: first.bytes_done >= 5 * MiB)
    first.pause()
    wait_for(lambda: finished(first))
    again = kernel_uploader(moto_bucket, source, "found.bin")
    wait_for(lambda: again.status == "paused")
    again.cancel()
    assert again.status == "cancelled" and moto_bucket.open_uploads() == []
    other = kernel_uploader(moto_bucket, source, "found.bin")
    close_after_its_look(other)
    assert other.status == "ready" and other.bytes_done == 0


def test_another_file_to_the_same_key_is_not_shown_as_resumable(
        moto_bucket: Bucket, source: Path, tmp_path: Path, state_dir: str) -> None:
    first = kernel_uploader(moto_bucket, source, "same-key.bin", bwlimit="4MiB", concurrency=1)
    first.start()
    wait_for(lambda: first.bytes_done >= 5 * MiB)
    first.pause()
    wait_for(lambda: finished(first))
    other = kernel_uploader(moto_bucket, make_file(tmp_path / "other.bin", 6 * MiB),
                            "same-key.bin")
    close_after_its_look(other)
    assert other.status == "ready" and other.bytes_done == 0


def test_cancel_aborts_the_multipart_upload(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    widget = kernel_uploader(moto_bucket, source, "cancel.bin", bwlimit="2MiB", concurrency=1)
    widget.start()
    wait_for(lambda: widget.status == "uploading")
    widget.cancel()
    widget.wait(60)
    assert widget.status == "cancelled"
    assert moto_bucket.open_uploads() == []


def test_cancel_while_paused_aborts_too(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    widget = kernel_uploader(moto_bucket, source, "cancel2.bin", bwlimit="4MiB", concurrency=1)
    widget.start()
    wait_for(lambda: widget.bytes_done > 0)
    widget.pause()
    wait_for(lambda: finished(widget))
    assert moto_bucket.open_uploads() != []
    widget.cancel()
    assert widget.status == "cancelled"
    assert moto_bucket.open_uploads() == []


def test_errors_are_shown_in_plain_words(
        moto_bucket: Bucket, source: Path, tmp_path: Path, state_dir: str) -> None:
    missing_bucket = Uploader(source, "s3://no-such-bucket-here/x.bin",
                              endpoint_url=moto_bucket.endpoint)
    missing_bucket.start()
    missing_bucket.wait(60)
    assert missing_bucket.status == "failed"
    assert missing_bucket.error.startswith("The destination is not usable")
    assert "'no-such-bucket-here' does not exist" in missing_bucket.error

    missing_file = Uploader(tmp_path / "nowhere.bin", moto_bucket.url("x.bin"),
                            endpoint_url=moto_bucket.endpoint)
    missing_file.start()
    assert missing_file.status == "failed"
    assert missing_file.error.startswith("The file could not be read")
    assert "nowhere.bin" in missing_file.error

    empty = Uploader("", "", endpoint_url=moto_bucket.endpoint)
    empty.start()
    assert empty.status == "failed" and "choose a source file" in empty.error


def test_the_file_chooser_lists_the_folder_of_the_source(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    make_file(tmp_path / "b.mp4", 10)
    make_file(tmp_path / ".hidden", 10)
    widget = Uploader(tmp_path / "b.mp4", "s3://bucket/key")
    assert widget.choices == [str(tmp_path / "b.mp4"), str(tmp_path / "clips") + "/"]
    widget.source = str(tmp_path / "clips")
    assert widget.choices == []
    widget.source = "s3://elsewhere/file"
    assert widget.choices == []


def test_upload_one_liner_shows_a_bar_and_returns_the_result(
        moto_bucket: Bucket, source: Path, state_dir: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    result = upload(source, moto_bucket.url("one.bin"), endpoint_url=moto_bucket.endpoint,
                    part_size="5MiB")
    assert result.status == "completed" and result.parts == 3
    assert "Uploader" in capsys.readouterr().out  # displayed (as text outside Jupyter)
    assert moto_bucket.read("one.bin") == source.read_bytes()


def test_the_package_exports() -> None:
    import streamify_notebook

    assert streamify_notebook.__all__ == ["BrowserUploader", "Uploader", "upload"]


def test_events_from_worker_threads_update_the_widget(
        moto_bucket: Bucket, source: Path, state_dir: str) -> None:
    widget = kernel_uploader(moto_bucket, source, "threads.bin", concurrency=3)
    threads: set[str] = set()
    widget.observe(lambda _: threads.add(threading.current_thread().name), names="bytes_done")
    widget.start()
    widget.wait(60)
    assert widget.status == "completed"
    assert threading.main_thread().name not in threads
