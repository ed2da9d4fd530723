"""``Presigner`` makes the very URL botocore's ``generate_presigned_url`` makes: same path,
same query, same signature, for awkward keys, metadata, checksums, part numbers and
temporary credentials; and ``S3ControlPlane`` uses it only where the URL is that simple."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from hypothesis import given, settings
from hypothesis import strategies as st
from streamify._control import PartToSign
from streamify._destination import Destination
from streamify._presign import Presigner
from streamify._s3control import S3ControlPlane, s3_client

ENDPOINT = "http://127.0.0.1:9"  # never contacted: presigning is local
KEYS = ["plain.bin", "a b/c~d+é.bin", "dir/../x?y#z&=%", "videos/2026/clip (1).MOV",
        "ünïcödé/ключ/鍵", "trailing/", "*'()!$,;:@[]"]


def _session(token: str | None = None) -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIDEXAMPLE", region_name="us-east-1",
                         aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         aws_session_token=token)


def _split(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", urllib.parse.parse_qs(parts.query)


def _botocore_and_ours(operation: str, params: dict[str, Any], headers: dict[str, str],
                       query: dict[str, str], token: str | None = None) -> tuple[str, str]:
    client = s3_client(endpoint_url=ENDPOINT, session=_session(token))
    theirs = client.generate_presigned_url(operation, Params=params, ExpiresIn=900)
    stamp = urllib.parse.parse_qs(urllib.parse.urlsplit(theirs).query)["X-Amz-Date"][0]
    now = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    frozen = client._request_signer._credentials.get_frozen_credentials()  # type: ignore[attr-defined]
    ours = Presigner(ENDPOINT, "us-east-1").put_url(
        params["Bucket"], params["Key"], query=query, headers=headers,
        access_key=frozen.access_key, secret_key=frozen.secret_key, token=frozen.token,
        now=now, expires_in=900)
    return theirs, ours


@pytest.mark.parametrize("key", KEYS)
def test_object_put_is_botocores_url(key: str) -> None:
    params = {"Bucket": "bucket-1", "Key": key, "ContentType": "video/mp4",
              "ContentLength": 12345, "ContentMD5": "XUFAKrxLKna5cZ2REBfFkg==",
              "Metadata": {"title": "a  b", "n": "1"},
              "ChecksumCRC64NVME": "AAAAAAAAAAA="}
    headers = {"Content-Type": "video/mp4", "x-amz-meta-title": "a  b", "x-amz-meta-n": "1",
               "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==",
               "x-amz-checksum-crc64nvme": "AAAAAAAAAAA=", "Content-Length": "12345"}
    theirs, ours = _botocore_and_ours("put_object", params, headers, {})
    assert _split(ours) == _split(theirs)


@given(key=st.text(min_size=1, max_size=40), number=st.integers(1, 10_000))
@settings(max_examples=60, deadline=None)
def test_part_put_is_botocores_url(key: str, number: int) -> None:
    params = {"Bucket": "b.dots-and_more", "Key": key, "UploadId": "2~x/y+z=",
              "PartNumber": number, "ContentLength": 5}
    theirs, ours = _botocore_and_ours(
        "upload_part", params, {"Content-Length": "5"},
        {"partNumber": str(number), "uploadId": "2~x/y+z="})
    assert _split(ours) == _split(theirs)


def test_temporary_credentials_carry_their_token() -> None:
    params = {"Bucket": "bucket", "Key": "k", "ContentType": "application/octet-stream"}
    theirs, ours = _botocore_and_ours("put_object", params,
                                      {"Content-Type": "application/octet-stream"}, {},
                                      token="FwoGZXIvYXdzE//token+/=")
    assert "X-Amz-Security-Token" in _split(ours)[1]
    assert _split(ours) == _split(theirs)


def test_control_plane_signs_through_it_only_when_the_url_is_simple() -> None:
    part = PartToSign(1, 5, "XUFAKrxLKna5cZ2REBfFkg==", None)
    here = S3ControlPlane(endpoint_url=ENDPOINT, session=_session())
    signed = here.sign_object(Destination("bucket", "a b.bin"), part,
                              content_type="text/plain", metadata={}, expires_in=60)
    assert isinstance(here._fast_presigner(), Presigner)
    theirs = here.client.generate_presigned_url("put_object", ExpiresIn=60, Params={
        "Bucket": "bucket", "Key": "a b.bin", "ContentType": "text/plain",
        "ContentLength": 5, "ContentMD5": "XUFAKrxLKna5cZ2REBfFkg=="})
    mine, other = _split(signed.url), _split(theirs)
    if mine[1]["X-Amz-Date"] == other[1]["X-Amz-Date"]:  # signed within the same second
        assert mine == other
    assert set(mine[1]) == set(other[1])
    # A client passed in, or one addressed virtual-host style, is left to botocore.
    given_client = S3ControlPlane(s3_client(endpoint_url=ENDPOINT, session=_session()))
    assert given_client._fast_presigner() is False
    hosted = S3ControlPlane(endpoint_url=ENDPOINT, session=_session(), client_kwargs={
        "config": Config(s3={"addressing_style": "virtual"})})
    assert hosted._fast_presigner() is False


def test_signing_is_computation_only_with_its_own_presigner_and_fixed_keys() -> None:
    """What lets the API service sign on its event loop: its own ``Presigner`` and keys
    that never refresh. A role's credentials refresh through STS (network I/O), and a
    client passed in is signed by botocore."""
    assert S3ControlPlane(endpoint_url=ENDPOINT, session=_session()).signs_without_io
    given_client = S3ControlPlane(s3_client(endpoint_url=ENDPOINT, session=_session()))
    assert not given_client.signs_without_io
    role = _session()
    role._session._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
        metadata={"access_key": "AKIDROLE", "secret_key": "secret", "token": "t",
                  "expiry_time": "2999-01-01T00:00:00Z"},
        refresh_using=lambda: {}, method="assume-role")
    assert not S3ControlPlane(endpoint_url=ENDPOINT, session=role).signs_without_io
