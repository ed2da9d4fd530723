"""A listing page read lean (``lean_listing``) says what botocore's full parse says.

``S3ControlPlane`` reads ListObjectsV2 pages (``list_objects_page``, the API service's
``GET /v1/objects``) and ListMultipartUploads pages (``list_uploads``, ``count_uploads``)
with ElementTree rather than botocore's model walk. Each page here is read both ways from
the same server (moto, and radosgw in the real-S3 tier), with keys that need escaping in
XML and in URLs, and compared field by field.
"""

from __future__ import annotations

import datetime

import pytest
from streamify._destination import Destination
from streamify._lean_listing import install_lean_listing, lean_listing
from streamify._s3control import S3ControlPlane

from tests.conftest import Bucket

KEYS = ["in/a.mov", "in/b & c <d>.mov", "in/caf\u00e9 \u00e9t\u00e9.mp4", "in/plus+sign.mov",
        "in/per%cent.mov", "in/sub/deep.mov", "in/quote\"'.mov", "in/tab\tname.mov",
        "in/z" + "x" * 200 + ".mov", "other/not-listed.mov"]
PAGE_FIELDS = ("IsTruncated", "KeyCount", "MaxKeys", "Prefix", "Name", "StartAfter",
               "Delimiter", "NextContinuationToken", "ContinuationToken")
OBJECT_FIELDS = ("Key", "Size", "ETag", "LastModified")


@pytest.fixture(params=["moto", pytest.param("radosgw", marks=pytest.mark.reals3)])
def filled(request: pytest.FixtureRequest) -> Bucket:
    """A bucket holding ``KEYS``, each of its own size."""
    bucket: Bucket = request.getfixturevalue(
        "moto_bucket" if request.param == "moto" else "real_bucket")
    for number, key in enumerate(KEYS):
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b"v" * number)
    return bucket


def _both(bucket: Bucket, **options: object) -> tuple[dict[str, object], dict[str, object]]:
    install_lean_listing(bucket.client)
    full = bucket.client.list_objects_v2(Bucket=bucket.name, **options)
    with lean_listing():
        lean = bucket.client.list_objects_v2(Bucket=bucket.name, **options)
    return full, lean


@pytest.mark.parametrize("options", [
    {"Prefix": "in/"},
    {"Prefix": "in/", "MaxKeys": 3},
    {"Prefix": "in/", "StartAfter": "in/b & c <d>.mov", "MaxKeys": 4},
    {"Prefix": "in/", "Delimiter": "/"},
    {"Prefix": "nothing-here/"},
], ids=["all", "first-page", "after-a-key", "folders", "empty"])
def test_a_lean_page_reads_as_botocore_reads_it(filled: Bucket,
                                                options: dict[str, object]) -> None:
    full, lean = _both(filled, **options)
    for field in PAGE_FIELDS:
        assert lean.get(field) == full.get(field), field
    assert lean.get("CommonPrefixes") == full.get("CommonPrefixes")
    full_objects = full.get("Contents", [])
    lean_objects = lean.get("Contents", [])
    assert isinstance(full_objects, list) and isinstance(lean_objects, list)
    assert [o["Key"] for o in lean_objects] == [o["Key"] for o in full_objects]
    for mine, theirs in zip(lean_objects, full_objects, strict=True):
        assert {f: mine[f] for f in OBJECT_FIELDS} == {f: theirs[f] for f in OBJECT_FIELDS}
        assert isinstance(mine["LastModified"], datetime.datetime)
    if options.get("MaxKeys") == 3:
        assert lean["IsTruncated"] is True and len(lean_objects) == 3


def test_pages_of_the_control_plane_walk_the_whole_prefix(filled: Bucket) -> None:
    control = S3ControlPlane(filled.client)
    prefix = Destination(filled.name, "in/")
    seen: list[str] = []
    after = None
    while True:
        page, more = control.list_objects_page(prefix, limit=4, after=after)
        seen += [listed.destination.key for listed in page]
        if not more:
            break
        after = page[-1].destination.key
    assert seen == sorted(k for k in KEYS if k.startswith("in/"))
    sizes = {listed.destination.key: listed.size for listed in control.list_objects_page(
        prefix, limit=1000)[0]}
    assert sizes == {k: KEYS.index(k) for k in KEYS if k.startswith("in/")}


UPLOAD_FIELDS = ("Key", "UploadId", "Initiated")
UPLOADS_PAGE_FIELDS = ("IsTruncated", "Bucket", "Prefix", "KeyMarker", "UploadIdMarker",
                       "NextKeyMarker", "NextUploadIdMarker", "MaxUploads")


@pytest.mark.parametrize("options", [
    {"Prefix": "in/"}, {"Prefix": "in/", "MaxUploads": 2}, {"Prefix": "nothing-here/"},
], ids=["all", "first-page", "empty"])
def test_a_lean_page_of_uploads_reads_as_botocore_reads_it(
        filled: Bucket, options: dict[str, object]) -> None:
    for key in KEYS[:5]:
        filled.client.create_multipart_upload(Bucket=filled.name, Key=key)
    install_lean_listing(filled.client)
    full = filled.client.list_multipart_uploads(Bucket=filled.name, **options)
    with lean_listing():
        lean = filled.client.list_multipart_uploads(Bucket=filled.name, **options)
    for field in UPLOADS_PAGE_FIELDS:
        assert lean.get(field) == full.get(field), field
    assert ([{f: u[f] for f in UPLOAD_FIELDS} for u in lean.get("Uploads", [])]
            == [{f: u[f] for f in UPLOAD_FIELDS} for u in full.get("Uploads", [])])
    if options.get("MaxUploads") == 2:  # moto lists them all; radosgw, two and says so
        assert (len(lean["Uploads"]), lean["IsTruncated"]) in ((2, True), (5, False))


def test_open_uploads_are_counted_no_further_than_asked(filled: Bucket) -> None:
    control = S3ControlPlane(filled.client)
    prefix = Destination(filled.name, "in/")
    for key in KEYS[:7]:
        filled.client.create_multipart_upload(Bucket=filled.name, Key=key)
    listed = control.list_uploads(prefix)
    assert sorted(u.destination.key for u in listed) == sorted(KEYS[:7])
    calls: list[object] = []
    filled.client.meta.events.register("before-send.s3.ListMultipartUploads",
                                       lambda **_: calls.append(1), unique_id="count")
    try:
        assert control.count_uploads(prefix, at_most=3) == 3
        assert len(calls) == 1  # one page of three, not every upload
        assert control.count_uploads(prefix, at_most=100) == 7
        assert control.count_uploads(Destination(filled.name, "none/"), at_most=5) == 0
    finally:
        filled.client.meta.events.unregister("before-send.s3.ListMultipartUploads",
                                             unique_id="count")


def test_outside_lean_listing_the_client_parses_every_field(moto_bucket: Bucket) -> None:
    moto_bucket.client.put_object(Bucket=moto_bucket.name, Key="in/a.mov", Body=b"a")
    install_lean_listing(moto_bucket.client)
    with lean_listing():
        lean = moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)
    full = moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)
    assert "StorageClass" not in lean["Contents"][0]
    assert full["Contents"][0]["StorageClass"] == "STANDARD"


def test_an_answer_it_cannot_read_is_left_to_botocore(moto_bucket: Bucket) -> None:
    seen: list[bytes] = []

    def damage(response_dict: dict[str, object], **_: object) -> None:
        response_dict["body"] = b"<ListBucketResult><Contents><Key>cut"
        seen.append(b"damaged")

    events = moto_bucket.client.meta.events
    # Registered first, so the damage happens before the lean reader sees the body.
    events.register_first("before-parse.s3.ListObjectsV2", damage, unique_id="damage")
    install_lean_listing(moto_bucket.client)
    try:
        with lean_listing(), pytest.raises(Exception, match="invalid XML"):
            moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)
    finally:
        events.unregister("before-parse.s3.ListObjectsV2", unique_id="damage")
    assert seen


def test_botocore_is_left_nothing_to_parse(moto_bucket: Bucket) -> None:
    """The point of it: botocore's own parser gets an empty body inside ``lean_listing``."""
    moto_bucket.client.put_object(Bucket=moto_bucket.name, Key="in/a.mov", Body=b"a")
    bodies: list[bytes] = []

    def record(response_dict: dict[str, bytes], **_: object) -> None:
        bodies.append(response_dict["body"])

    events = moto_bucket.client.meta.events
    install_lean_listing(moto_bucket.client)
    events.register_last("before-parse.s3.ListObjectsV2", record, unique_id="record")
    try:
        with lean_listing():
            moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)
        moto_bucket.client.list_objects_v2(Bucket=moto_bucket.name)
    finally:
        events.unregister("before-parse.s3.ListObjectsV2", unique_id="record")
    assert bodies[0] == b"" and b"in/a.mov" in bodies[1]
