"""What is signed into part URLs (size, MD5, additional checksums) a real server enforces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import streamify

from tests.conftest import Bucket
from tests.helpers import RecordingSender, assert_checksums_signed_and_sent, make_file

MiB = 1024 * 1024


@pytest.mark.reals3
@pytest.mark.parametrize("checksum", ["sha256", "crc32"])
def test_upload_with_an_additional_checksum(tmp_path: Path, real_bucket: Bucket, state_dir: str,
                                            checksum: str) -> None:
    path = make_file(tmp_path / "v.mp4", 11 * MiB)
    sender = RecordingSender()
    with streamify.Uploader(
            path, real_bucket.url("v.mp4"), sender=sender,
            control=streamify.S3ControlPlane(endpoint_url=real_bucket.endpoint),
            config=streamify.UploadConfig(part_size="5MiB", checksum=checksum),  # type: ignore[arg-type]
            state=streamify.StateStore(state_dir)) as uploader:
        result = uploader.run()
    assert result.status == "completed"
    # radosgw ignores x-amz-checksum-* headers, so its success alone proves nothing: each
    # PUT must have carried the body's checksum, signed into the URL.
    assert_checksums_signed_and_sent(sender.puts, checksum)
    assert hashlib.sha256(real_bucket.read("v.mp4")).digest() == hashlib.sha256(
        path.read_bytes()).digest()


@pytest.mark.reals3
def test_a_part_url_refuses_a_body_of_another_size_or_content(real_bucket: Bucket) -> None:
    import urllib3
    from streamify._checksum import md5_base64

    plane = streamify.S3ControlPlane(endpoint_url=real_bucket.endpoint)
    dest = streamify.Destination(real_bucket.name, "signed.bin")
    upload_id = plane.create_upload(dest, content_type="application/octet-stream", metadata={},
                                    checksum="none")
    body = b"0123456789"
    signed = plane.sign_parts(dest, upload_id, [streamify.PartToSign(1, 10, md5_base64(body))],
                              expires_in=60)[0]
    longer = urllib3.request("PUT", signed.url, body=body + b"!", headers=dict(signed.headers))
    other = urllib3.request("PUT", signed.url, body=b"9876543210", headers=dict(signed.headers))
    good = urllib3.request("PUT", signed.url, body=body, headers=dict(signed.headers))
    assert longer.status == 403  # Content-Length is signed in
    assert other.status == 400 and b"BadDigest" in other.data  # Content-MD5 is checked
    assert good.status == 200
    plane.abort(dest, upload_id)
