"""The widgets' state and their calls into the core, against moto's server on loopback.

No browser here: ``Uploader`` is driven through its methods (what its buttons call), and
``BrowserUploader`` through ``answer`` (what the browser's requests reach), with this test
PUTting the parts to the presigned URLs the way the page does.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
from streamify import ConfigError, Destination, HttpControlPlane, S3ControlPlane, plan_parts

from streamify_notebook import BrowserUploader, Uploader, upload
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


# ---------------------------------------------------------------------- BrowserUploader
class FakePage:
    """Does what widget.js does with the answers: MD5 per part, PUT to the signed URL."""

    def __init__(self, widget: BrowserUploader, name: str, data: bytes) -> None:
        self.widget, self.name, self.data = widget, name, data
        self.puts: list[int] = []
        self.calls = 0

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        self.calls += 1
        answer = self.widget.answer({"id": f"r{self.calls}", "op": op, "name": self.name,
                                     **fields})
        assert answer["id"] == f"r{self.calls}"
        return answer

    def open(self, **fields: Any) -> dict[str, Any]:
        """Open as the page does: hash the ranges the kernel asks for, until it answers."""
        opened = self.ask("open", size=len(self.data), **fields)
        while "hash" in opened:
            md5s = [[offset, size, hashlib.md5(self.data[offset:offset + size]).hexdigest()]
                    for offset, size in opened["hash"]]
            opened = self.ask("open", size=len(self.data), md5s=md5s, **fields)
        return opened

    def start(self, numbers: list[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Open a new upload and send these parts; the open answer and the parts sent."""
        opened = self.open(upload_id=None, part_size=None)
        return opened, self.send(opened, numbers)

    def send(self, opened: dict[str, Any], numbers: list[int]) -> list[dict[str, Any]]:
        sent = []
        for number in numbers:
            offset, size = opened["parts"][number - 1]
            body = self.data[offset:offset + size]
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            signed = self.ask("sign", upload_id=opened["upload_id"],
                              parts=[{"number": number, "size": len(body), "md5": md5}])
            (part,) = signed["parts"]
            assert part["headers"].get("Content-MD5") == md5
            response = httpx.put(part["url"], content=body, timeout=60,
                                 headers={"Content-Type": "application/octet-stream",
                                          **part["headers"]})
            assert response.status_code == 200, response.text
            self.puts.append(number)
            sent.append({"number": number, "etag": response.headers["ETag"].strip('"'),
                         "size": len(body)})
        return sent


@pytest.fixture(params=["s3", "api"])
def browser_widget(request: pytest.FixtureRequest,
                   moto_bucket: Bucket) -> Iterator[tuple[BrowserUploader, Bucket, str]]:
    """A BrowserUploader on each control plane, and the key prefix it may write to."""
    if request.param == "s3":
        yield (BrowserUploader(moto_bucket.url("drop/"), endpoint_url=moto_bucket.endpoint,
                               part_size="5MiB"), moto_bucket, "drop/")
        return
    with running_api(moto_bucket) as api:
        control = HttpControlPlane(api.url, token=TOKENS["alice"])
        prefix = PREFIXES["alice"]
        yield (BrowserUploader(moto_bucket.url(prefix), control=control, part_size="5MiB"),
               moto_bucket, prefix)


def test_browser_upload_resumes_from_the_remembered_upload_with_only_missing_parts(
        browser_widget: tuple[BrowserUploader, Bucket, str]) -> None:
    widget, bucket, prefix = browser_widget
    data = bytes(range(256)) * (48 * 1024) + b"tail"  # 12 MiB + 4 bytes: 3 parts
    page = FakePage(widget, "clip.mov", data)
    opened = page.open(upload_id=None, part_size=None)
    assert "error" not in opened, opened
    assert opened["key"] == prefix + "clip.mov"
    plan = plan_parts(len(data), 5 * MiB)
    assert opened["parts"] == [[p.offset, p.size] for p in plan]
    assert opened["part_size"] == plan.part_size and opened["present"] == []
    assert opened["retry"] == widget.config.retry_budget().table()
    assert (widget.file_name, widget.total_bytes) == ("clip.mov", len(data))
    first = page.send(opened, [1, 3])

    # A reload: the page only remembers the upload id and part size; the kernel has the
    # parts S3 holds hashed by the page before it keeps them.
    asks = page.calls
    reopened = page.open(upload_id=opened["upload_id"], part_size=opened["part_size"])
    assert page.calls == asks + 2
    assert reopened["upload_id"] == opened["upload_id"]
    assert reopened["present"] == first
    rest = page.send(reopened, [2])
    assert page.puts == [1, 3, 2]
    done = page.ask("complete", upload_id=opened["upload_id"], size=len(data),
                    parts=first + rest)
    assert done["size"] == len(data)
    assert widget.status == "completed" and widget.bytes_done == len(data)
    assert bucket.read(prefix + "clip.mov") == data
    assert bucket.open_uploads() == []


def test_browser_upload_starts_afresh_when_the_remembered_upload_is_gone(
        browser_widget: tuple[BrowserUploader, Bucket, str]) -> None:
    widget, bucket, _ = browser_widget
    page = FakePage(widget, "gone.bin", b"x" * (6 * MiB))
    opened = page.open(upload_id=None, part_size=None)
    page.ask("abort", upload_id=opened["upload_id"])
    assert widget.status == "cancelled" and bucket.open_uploads() == []
    again = page.open(upload_id=opened["upload_id"], part_size=opened["part_size"])
    assert "error" not in again, again
    assert again["upload_id"] != opened["upload_id"] and again["present"] == []


def test_another_page_finds_the_open_upload_and_a_new_widget_names_its_file(
        browser_widget: tuple[BrowserUploader, Bucket, str]) -> None:
    widget, _, _ = browser_widget
    data = bytes(range(256)) * (60 * 1024)  # 15 MiB: 3 parts
    opened, first = FakePage(widget, "clip.mov", data).start([1, 2])

    # A page that remembers nothing (another browser, cleared storage) resumes the same
    # upload once the MD5s it computed match what S3 holds.
    elsewhere = FakePage(widget, "clip.mov", data)
    reopened = elsewhere.open(upload_id=None, part_size=None)
    assert reopened["upload_id"] == opened["upload_id"] and reopened["present"] == first

    # Another file of the same name is refused, not mixed into that upload.
    other = FakePage(widget, "clip.mov", bytes(reversed(data)))
    assert "does not match clip.mov" in other.open(upload_id=None, part_size=None)["error"]

    fresh = BrowserUploader(widget.destination, control=widget.control, part_size="5MiB")
    assert fresh.answer({"id": "r1", "op": "look"}) == {"id": "r1"}
    assert fresh.detail == ("unfinished upload here: clip.mov (10.0 MiB in S3); "
                            "choose clip.mov to resume it")


def test_a_completion_whose_answer_was_lost_is_checked_and_answered_again(
        browser_widget: tuple[BrowserUploader, Bucket, str]) -> None:
    widget, bucket, prefix = browser_widget
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB: 2 parts
    page = FakePage(widget, "twice.bin", data)
    opened, parts = page.start([1, 2])
    done = page.ask("complete", upload_id=opened["upload_id"], size=len(data), parts=parts)
    # The page never got that answer and asks again: the upload is gone, but the object
    # is the one these parts make (its composite ETag), so the answer is the same.
    again = page.ask("complete", upload_id=opened["upload_id"], size=len(data), parts=parts)
    assert again == {**done, "id": again["id"]}
    # A part list that is not what was sent is no such proof.
    wrong = [{**parts[0], "etag": "0" * 32}, parts[1]]
    refused = page.ask("complete", upload_id=opened["upload_id"], size=len(data), parts=wrong)
    assert "error" in refused and "size" not in refused, refused
    assert bucket.read(prefix + "twice.bin") == data


def test_errors_name_the_widget_arguments_and_who_failed() -> None:
    from streamify import AccessDeniedError, EndpointError

    from streamify_notebook._errors import plain_error

    service = plain_error(EndpointError("cannot reach the API service at http://x "
                                        "(ConnectError); check api_url (--api) and the "
                                        "network, then rerun to resume"), service=True)
    assert service == ("The API service could not be reached: cannot reach the API service "
                       "at http://x (ConnectError); check api_url and the network, then "
                       "press Start to resume")
    storage = plain_error(EndpointError("cannot reach S3; check --endpoint-url and the "
                                        "network, then rerun the same command to resume"))
    assert storage == ("Storage could not be reached: cannot reach S3; check endpoint_url "
                       "and the network, then press Start to resume")
    assert plain_error(AccessDeniedError("no"), service=True).startswith(
        "The API service refused access")


def test_a_widget_reaches_the_api_service_by_its_own_arguments(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket) as api:
        widget = BrowserUploader(moto_bucket.url(PREFIXES["alice"]), api_url=api.url,
                                 token=TOKENS["alice"], part_size="5MiB")
        page = FakePage(widget, "via.bin", b"v" * MiB)
        opened = page.open(upload_id=None, part_size=None)
        done = page.ask("complete", upload_id=opened["upload_id"], size=MiB,
                        parts=page.send(opened, [1]))
        assert done["size"] == MiB
        widget.close()
    with pytest.raises(ConfigError, match="token"):
        BrowserUploader("s3://bucket/", api_url="http://127.0.0.1:1")


def test_browser_requests_that_storage_refuses_answer_in_plain_words(
        moto_bucket: Bucket) -> None:
    widget = BrowserUploader("s3://no-such-bucket-here/", endpoint_url=moto_bucket.endpoint)
    answer = widget.answer({"id": "r1", "op": "open", "name": "a.bin", "size": 10})
    assert answer["id"] == "r1"
    assert answer["error"].startswith("The destination is not usable")
    assert "no-such-bucket-here" in answer["error"]
    unknown = widget.answer({"id": "r2", "op": "format-disk", "name": "a.bin"})
    assert "error" in unknown


def test_browser_options_reach_the_page() -> None:
    widget = BrowserUploader("s3://bucket/key.bin", concurrency=6, bwlimit="1MiB",
                             max_attempts=3)
    assert (widget.concurrency, widget.bwlimit) == (6, MiB)
    assert widget.config.retry_budget().table()["max_attempts"] == 3
    assert widget.kind == "browser"
    assert str(widget.target("whatever.bin")) == "s3://bucket/key.bin"


def test_the_browser_module_and_styles_ship_beside_the_classes() -> None:
    import streamify_notebook

    folder = Path(streamify_notebook.__file__).parent
    assert (folder / "widget.js").is_file() and (folder / "widget.css").is_file()
    assert re.search(r"export\s*\{\s*\w+ as default\s*\}", (folder / "widget.js").read_text())
    css = (folder / "widget.css").read_text()
    assert "var(--jp-ui-font-color1" in css and "var(--jp-layout-color1" in css


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
