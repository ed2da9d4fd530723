"""``BrowserUploader``'s kernel side against moto's server on loopback (and through the API
service): no browser here, the requests reach ``answer`` as the page sends them, and this
test PUTs the parts to the presigned URLs and hashes what the kernel asks, as the page does.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")
from streamify import (
    ConfigError,
    Destination,
    EndpointError,
    HttpControlPlane,
    ObjectInfo,
    OpenUpload,
    S3ControlPlane,
    UploadedPart,
    plan_parts,
)

from streamify_notebook import BrowserUploader
from tests.conftest import Bucket
from tests.server.conftest import PREFIXES, TOKENS, running_api

MiB = 1024 * 1024


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


class OutageOnce(S3ControlPlane):
    """S3 that is unavailable for the first call of each kind, as in a short outage."""

    def __init__(self, endpoint_url: str) -> None:
        super().__init__(endpoint_url=endpoint_url)
        self.failed: set[str] = set()

    def _outage(self, call: str) -> None:
        if call not in self.failed:
            self.failed.add(call)
            raise EndpointError(f"{call}: S3 is unavailable (503 SlowDown)", transient=True,
                                status=503)

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        self._outage("list_uploads")
        return super().list_uploads(destination)

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        self._outage("complete")
        return super().complete(destination, upload_id, parts)


def test_the_kernels_calls_ride_out_an_outage_under_the_retry_budget(
        moto_bucket: Bucket) -> None:
    control = OutageOnce(moto_bucket.endpoint)
    widget = BrowserUploader(moto_bucket.url("drop/"), control=control, part_size="5MiB",
                             backoff_base=0.01)
    page = FakePage(widget, "outage.bin", b"o" * MiB)
    opened, parts = page.start([1])
    assert "error" not in opened, opened
    done = page.ask("complete", upload_id=opened["upload_id"], size=MiB, parts=parts)
    assert done["size"] == MiB, done
    assert control.failed == {"list_uploads", "complete"}
    assert moto_bucket.read("drop/outage.bin") == b"o" * MiB
    control.close()
