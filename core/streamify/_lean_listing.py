"""ListObjectsV2 pages read for what a listing of objects needs, and no more.

botocore reads an answer by walking the S3 service model for every element: a page of
1,000 keys costs about 13 ms of CPU, most of what a listing costs the API service, which
lists for many callers at once. A page of objects needs five fields of each object (key,
size, ETag, time, and whether more pages follow); ElementTree reads those in about a
quarter of the time.

:func:`lean_listing` turns this on for the ``ListObjectsV2`` calls made inside it, on
that thread only: botocore still signs, sends, retries and reads error answers, and hands
the page's body to a ``before-parse`` handler installed on the client, which reads it and
leaves botocore an empty body. botocore's own ``after-call`` handler still decodes the
keys (``EncodingType=url``). Every other call of the client gets botocore's full parse.
An answer this cannot read is left to botocore, which raises its own error.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._timestamps import read_timestamp

__all__ = ["install_lean_listing", "lean_listing"]

_HANDLER_ID = "streamify-lean-listing"
_active = threading.local()

_TEXT_FIELDS = ("Name", "Prefix", "Delimiter", "EncodingType", "ContinuationToken",
                "NextContinuationToken", "StartAfter")
_INT_FIELDS = ("MaxKeys", "KeyCount")


def install_lean_listing(client: Any) -> None:
    """Make ``client`` read ``ListObjectsV2`` pages lean inside :func:`lean_listing`
    (installing it twice is installing it once)."""
    client.meta.events.register("before-parse.s3.ListObjectsV2", _read_page,
                                unique_id=_HANDLER_ID)


@contextmanager
def lean_listing() -> Iterator[None]:
    """Read the ``ListObjectsV2`` pages of this thread's calls lean: each object's
    ``Key``, ``Size``, ``ETag`` and ``LastModified``, and the page's own fields
    (``IsTruncated``, ``KeyCount``, ``NextContinuationToken``...), as botocore reads them."""
    before = getattr(_active, "on", False)
    _active.on = True
    try:
        yield
    finally:
        _active.on = before


def _local(tag: str) -> str:
    """An element's name without its XML namespace."""
    return tag.rpartition("}")[2]


def _object(element: ET.Element) -> dict[str, Any]:
    fields = {_local(child.tag): child.text or "" for child in element}
    item: dict[str, Any] = {"Key": fields["Key"]}
    if "Size" in fields:
        item["Size"] = int(fields["Size"])
    if "ETag" in fields:
        item["ETag"] = fields["ETag"]
    if "LastModified" in fields:
        item["LastModified"] = read_timestamp(fields["LastModified"])
    return item


def _read_page(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
               **_: Any) -> None:
    if not getattr(_active, "on", False) or response_dict.get("status_code") != 200:
        return
    try:
        # The parser botocore itself reads this answer with (expat refuses external
        # entities and, since 2.4.1, entity expansion bombs).
        root = ET.fromstring(response_dict["body"])  # noqa: S314
        page: dict[str, Any] = {}
        contents = []
        for child in root:
            name = _local(child.tag)
            if name == "Contents":
                contents.append(_object(child))
            elif name == "IsTruncated":
                page[name] = (child.text or "").strip() == "true"
            elif name in _INT_FIELDS:
                page[name] = int(child.text or "0")
            elif name in _TEXT_FIELDS:
                page[name] = child.text or ""
            elif name == "CommonPrefixes":
                found = child.find("{*}Prefix")
                page.setdefault(name, []).append(
                    {"Prefix": found.text or ""} if found is not None else {})
    except (ET.ParseError, KeyError, ValueError, TypeError):
        return  # botocore reads it, or says why it cannot
    if contents:
        page["Contents"] = contents
    customized_response_dict.update(page)
    response_dict["body"] = b""
