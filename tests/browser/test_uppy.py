"""The real Uppy client against the API service and a real S3 server, in headless Chromium.

The page (``tests/browser/uppy/``) bundles ``@uppy/core`` and ``@uppy/aws-s3`` 6.x from npm
and uses the AWS S3 plugin in Companion mode with the page's own origin as the Companion
endpoint: the service serves the page at ``/ui/``, answers Uppy's ``/s3/multipart...`` calls
(authenticated by the session cookie only), and the browser PUTs the parts straight to
Ceph radosgw through the presigned URLs. radosgw checks the signatures, and answers the
browser's cross-origin PUTs only because the bucket's CORS rule allows the page's origin
and exposes ``ETag``.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from streamify import apply_bucket_rules

from tests.conftest import Bucket
from tests.helpers import make_file

pytestmark = [pytest.mark.browser, pytest.mark.reals3]

HERE = Path(__file__).parent
PAGE_SOURCES = [HERE / "uppy" / name for name in
                ("package-lock.json", "main.js", "index.html")] + [HERE / "build.sh"]
PAGE_DIR = HERE / "uppy" / "dist"
PAGE_FILES = [PAGE_DIR / "index.html", PAGE_DIR / "uppy-page.js"]

MiB = 1024 * 1024
FILE_SIZE = 64 * MiB
PART_SIZE = 8 * MiB  # the page's default (its ``partMiB`` query parameter)
UPLOAD_TIMEOUT_MS = 90_000
PRINCIPALS = ("alice", "bob")


def _page_is_stale() -> bool:
    if not all(path.is_file() for path in PAGE_FILES):
        return True
    built = min(path.stat().st_mtime for path in PAGE_FILES)
    return any(path.stat().st_mtime > built for path in PAGE_SOURCES)


@pytest.fixture(scope="session")
def uppy_page() -> Path:
    """The built test page; built with ``build.sh`` (npm ci + esbuild) when missing or stale."""
    if _page_is_stale():
        missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
        if missing:
            pytest.skip(f"browser tier skipped: {' and '.join(missing)} not found, and the "
                        "Uppy test page is not built (run `bash tests/browser/build.sh` "
                        "where Node 18+ and npm are installed)")
        subprocess.run(["bash", str(HERE / "build.sh")], check=True, timeout=600)
    return PAGE_DIR


@dataclass
class Service:
    """The API service on loopback, in front of the test bucket."""

    origin: str
    bucket: Bucket
    tokens: dict[str, str]
    """API key of each principal; principal ``name`` owns the prefix ``name/``."""
    contexts: list[Any] = field(default_factory=list)

    def signed_in_page(self, browser: Any, principal: str | None, query: str = "") -> Any:
        """A page (``index.html?query``) in a fresh browser context holding
        ``principal``'s session cookie."""
        context = browser.new_context()
        self.contexts.append(context)
        if principal is not None:
            answer = context.request.post(
                f"{self.origin}/v1/session",
                headers={"Authorization": f"Bearer {self.tokens[principal]}"})
            assert answer.status == 204, answer.text()
        page = context.new_page()
        page.goto(f"{self.origin}/ui/index.html{'?' + query if query else ''}")
        # The bundle defines the hook once Uppy is set up; fail here, not at the upload.
        page.wait_for_function("() => typeof window.startUpload === 'function'", timeout=10_000)
        return page


@pytest.fixture
def service(real_bucket: Bucket, uppy_page: Path) -> Iterator[Service]:
    from pydantic import SecretStr
    from streamify.server import (
        PrincipalSettings,
        ServiceSettings,
        create_app,
        hash_api_key,
        serve_in_thread,
    )

    tokens = {name: secrets.token_urlsafe(24) for name in PRINCIPALS}
    settings = ServiceSettings(
        bucket=real_bucket.name, s3_endpoint_url=real_bucket.endpoint, region="us-east-1",
        principals=tuple(PrincipalSettings(name=name, key_sha256=hash_api_key(token),
                                           prefix=f"{name}/")
                         for name, token in tokens.items()),
        cookie_secret=SecretStr(secrets.token_urlsafe(32)), static_dir=uppy_page)
    with serve_in_thread(create_app(settings)) as origin:
        apply_bucket_rules(real_bucket.client, real_bucket.name, allowed_origins=[origin])
        running = Service(origin, real_bucket, tokens)
        yield running
        for context in running.contexts:
            context.close()


def _sha256_of_object(bucket: Bucket, key: str) -> str:
    digest = hashlib.sha256()
    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _multipart_etag(path: Path, part_size: int) -> str:
    """The composite ETag S3 gives an object uploaded in parts of ``part_size``."""
    digests = []
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(part_size), b""):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


# Spaces, '#', '%' and non-ASCII letters must survive Uppy's query strings, the key rules
# and the SigV4 signature of the presigned URL that radosgw checks.
@pytest.mark.parametrize("filename", ["holiday video.mp4", "vidéo d\u2019été #1 (100%).mp4"],
                         ids=["ascii", "unicode"])
def test_uppy_uploads_a_file_in_parts_straight_to_s3(service: Service, browser: Any,
                                                     tmp_path: Path, filename: str) -> None:
    video = make_file(tmp_path / filename, FILE_SIZE, seed=7)
    page = service.signed_in_page(browser, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "streamify_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"

    page.set_input_files("#file", str(video))
    page.wait_for_function("() => ['success', 'error'].includes(window.uploadResult.status)",
                           timeout=UPLOAD_TIMEOUT_MS)
    result = page.evaluate("window.uploadResult")

    assert result["status"] == "success", result
    key = result["key"]
    assert key == f"alice/{filename}"
    expected_parts = math.ceil(FILE_SIZE / PART_SIZE)
    assert result["parts"] == list(range(1, expected_parts + 1))
    head = service.bucket.client.head_object(Bucket=service.bucket.name, Key=key)
    assert head["ContentLength"] == FILE_SIZE
    etag = head["ETag"].strip('"')
    assert int(etag.rpartition("-")[2]) > 1, f"not a multipart ETag: {etag}"
    assert etag == _multipart_etag(video, PART_SIZE)
    assert _sha256_of_object(service.bucket, key) == hashlib.sha256(video.read_bytes()).hexdigest()
    assert service.bucket.open_uploads() == []
    assert page.locator("#result").get_attribute("data-status") == "success"


def test_storage_refuses_parts_uppy_cuts_other_than_the_declared_plan(
        service: Service, browser: Any, tmp_path: Path) -> None:
    """The service signs each part's length from the plan of the size Uppy declared (8 MiB
    parts here); a page cutting 5 MiB parts has every PUT refused by storage."""
    video = make_file(tmp_path / "cut.mp4", 12 * MiB, seed=8)
    page = service.signed_in_page(browser, "alice", "partMiB=5")
    page.set_input_files("#file", str(video))
    page.wait_for_function("() => ['success', 'error'].includes(window.uploadResult.status)",
                           timeout=UPLOAD_TIMEOUT_MS)
    assert page.evaluate("window.uploadResult")["status"] == "error"
    [upload] = service.bucket.open_uploads()
    assert service.bucket.client.list_parts(
        Bucket=service.bucket.name, Key=upload["Key"],
        UploadId=upload["UploadId"]).get("Parts", []) == []
    assert not service.bucket.client.list_objects_v2(
        Bucket=service.bucket.name).get("Contents")


def test_cancelling_in_uppy_aborts_the_multipart_upload(service: Service, browser: Any,
                                                         tmp_path: Path) -> None:
    video = make_file(tmp_path / "cancelled.mp4", FILE_SIZE, seed=3)
    page = service.signed_in_page(browser, "alice")
    # Cancel as soon as the first part is in S3, from inside the page, so no race decides
    # whether the upload finished first.
    page.evaluate("""() => window.uppy.once('s3-multipart:part-uploaded',
                                          () => window.uppy.cancelAll())""")
    page.set_input_files("#file", str(video))
    page.wait_for_function("() => (window.uploadedParts || []).length >= 1",
                           timeout=UPLOAD_TIMEOUT_MS)

    deadline = time.monotonic() + 15
    while service.bucket.open_uploads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.bucket.open_uploads() == []
    assert page.evaluate("window.uploadedParts") == [1]
    assert page.evaluate("window.uploadResult.status") == "uploading"
    listed = service.bucket.client.list_objects_v2(Bucket=service.bucket.name)
    assert listed.get("KeyCount", 0) == 0


FETCH = """async ([method, path, body]) => {
    const init = {method, headers: body ? {'content-type': 'application/json'} : {}}
    if (body) init.body = JSON.stringify(body)
    const response = await fetch(path, init)
    return {status: response.status, body: await response.text()}
}"""


def _call(page: Any, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """A same-origin request from ``page``, as Uppy makes them (cookie, no auth header)."""
    answer = page.evaluate(FETCH, [method, path, body])
    return answer["status"], answer["body"]


def test_another_principal_cannot_reach_an_upload_from_its_page(service: Service,
                                                                browser: Any) -> None:
    alice = service.signed_in_page(browser, "alice")
    status, body = _call(alice, "POST", "/s3/multipart",
                         {"filename": "secret.mp4", "type": "video/mp4",
                          "metadata": {"size": 1}})
    assert status == 200, body
    created = json.loads(body)
    upload_id, key = created["uploadId"], created["key"]
    assert key == "alice/secret.mp4"
    query = urlencode({"key": key})
    done = {"parts": [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]}

    bob = service.signed_in_page(browser, "bob")
    attempts = [
        ("GET", f"/s3/multipart/{upload_id}?{query}", None),
        ("GET", f"/s3/multipart/{upload_id}/1?{query}", None),
        ("GET", f"/s3/multipart/{upload_id}/batch?{query}&partNumbers=1,2", None),
        ("POST", f"/s3/multipart/{upload_id}/complete?{query}", done),
        ("DELETE", f"/s3/multipart/{upload_id}?{query}", None),
    ]
    for method, path, payload in attempts:
        status, body = _call(bob, method, path, payload)
        assert status == 403, (method, path, status, body)
    # Naming a key of his own does not let him reach alice's upload id either.
    for method, path, payload in [
        ("GET", f"/s3/multipart/{upload_id}?key=bob/secret.mp4", None),
        ("GET", f"/s3/multipart/{upload_id}/1?key=bob/secret.mp4", None),
        ("POST", f"/s3/multipart/{upload_id}/complete?key=bob/secret.mp4", done),
        ("DELETE", f"/s3/multipart/{upload_id}?key=bob/secret.mp4", None),
    ]:
        status, body = _call(bob, method, path, payload)
        assert status == 404, (method, path, status, body)
    # A page without a session gets nothing.
    stranger = service.signed_in_page(browser, None)
    for method, path, payload in attempts:
        status, body = _call(stranger, method, path, payload)
        assert status == 401, (method, path, status, body)

    # The page's id is S3's, then "~" and the size declared with it.
    assert [u["UploadId"] for u in service.bucket.open_uploads()] == [
        upload_id.rpartition("~")[0]]
    assert _call(alice, "GET", f"/s3/multipart/{upload_id}?{query}") == (200, "[]")
    status, body = _call(alice, "DELETE", f"/s3/multipart/{upload_id}?{query}")
    assert status == 200, body
    assert service.bucket.open_uploads() == []
