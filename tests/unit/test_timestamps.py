"""S3's timestamps read by the standard library read exactly as botocore reads them."""

from __future__ import annotations

from datetime import datetime

import boto3
import pytest
from botocore.utils import parse_timestamp
from streamify._s3control import s3_client
from streamify._timestamps import read_timestamp

from tests.conftest import Bucket

SAMPLES = [
    "2026-12-04T19:00:00.000Z",  # S3's XML answers
    "2026-12-04T19:00:00Z",
    "2026-12-04T19:00:00.123456+02:00",
    "Wed, 04 Dec 2026 19:00:00 GMT",  # headers
    "1700000000",  # epoch seconds
    "2026-12-04T19:00:00",  # no zone: botocore leaves it naive, so must this
]


@pytest.mark.parametrize("value", SAMPLES)
def test_every_form_reads_as_botocore_reads_it(value: str) -> None:
    fast, slow = read_timestamp(value), parse_timestamp(value)
    assert fast == slow
    assert (fast.tzinfo is None) == (slow.tzinfo is None)
    assert fast.utcoffset() == slow.utcoffset()


class _CountedDatetime(datetime):
    read = 0

    @classmethod
    def fromisoformat(cls, value: str) -> _CountedDatetime:
        cls.read += 1
        return super().fromisoformat(value)


def test_a_listing_reads_the_same_through_streamify_s_client(
        moto_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streamify._timestamps.datetime", _CountedDatetime)
    for n in range(3):
        moto_bucket.client.put_object(Bucket=moto_bucket.name, Key=f"k{n}", Body=b"x")
    moto_bucket.client.create_multipart_upload(Bucket=moto_bucket.name, Key="open")
    ours = s3_client(endpoint_url=moto_bucket.endpoint, region="us-east-1")
    theirs = boto3.Session().client("s3", endpoint_url=moto_bucket.endpoint,
                                    region_name="us-east-1")
    for client in (ours, theirs):
        assert client.meta.region_name == "us-east-1"
    listed = [c.list_objects_v2(Bucket=moto_bucket.name)["Contents"] for c in (ours, theirs)]
    assert listed[0] == listed[1]
    uploads = [c.list_multipart_uploads(Bucket=moto_bucket.name)["Uploads"]
               for c in (ours, theirs)]
    assert uploads[0] == uploads[1]
    assert isinstance(listed[0][0]["LastModified"], datetime)
    # Streamify's client read them with read_timestamp (3 keys, 1 upload), the other not.
    assert _CountedDatetime.read == 4
