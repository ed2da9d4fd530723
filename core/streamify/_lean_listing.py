"""Listing pages (ListObjectsV2, ListMultipartUploads) read for what Streamify uses of
them, and no more.

botocore reads an answer by walking the S3 service model for every element: a page of
1,000 keys costs about 13 ms of CPU, most of what a listing costs the API service, which
lists for many callers at once (a page of objects for ``GET /v1/objects``, the caller's
open uploads before each new one). Streamify reads a few fields of each entry (an
object's key, size, ETag and time; an upload's key, id and start); ElementTree reads
those in about a quarter of the time.

:func:`lean_listing` turns this on for the listing calls made inside it, on that thread
only: botocore still signs, sends, retries and reads error answers, and hands a page's
body to a ``before-parse`` handler installed on the client, which reads it and leaves
botocore an empty body. botocore's own ``after-call`` handler still decodes the keys of
an object listing (``EncodingType=url``). Every other call of the client gets botocore's
full parse. An answer this cannot read is left to botocore, which raises its own error.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._timestamps import read_timestamp

__all__ = ["install_lean_listing", "lean_listing"]

_HANDLER_ID = "streamify-lean-listing"
_active = threading.local()

_Field = Callable[[str], Any]
# Per operation: the element of one entry, and the entry's fields that are read.
_ENTRIES: dict[str, tuple[str, dict[str, _Field]]] = {
    "ListObjectsV2": ("Contents", {"Key": str, "Size": int, "ETag": str,
                                   "LastModified": read_timestamp}),
    "ListMultipartUploads": ("Upload", {"Key": str, "UploadId": str,
                                        "Initiated": read_timestamp}),
}
# A page's own fields, as botocore types them.
_PAGE_FIELDS: dict[str, _Field] = {
    **{name: str for name in (
        "Name", "Bucket", "Prefix", "Delimiter", "EncodingType", "ContinuationToken",
        "NextContinuationToken", "StartAfter", "KeyMarker", "UploadIdMarker",
        "NextKeyMarker", "NextUploadIdMarker")},
    **{name: int for name in ("MaxKeys", "KeyCount", "MaxUploads")},
    "IsTruncated": lambda text: text.strip() == "true",
}


def install_lean_listing(client: Any) -> None:
    """Make ``client`` read listing pages lean inside :func:`lean_listing` (installing it
    twice is installing it once)."""
    for operation in _ENTRIES:
        client.meta.events.register(f"before-parse.s3.{operation}", _read_page,
                                    unique_id=f"{_HANDLER_ID}-{operation}")


@contextmanager
def lean_listing() -> Iterator[None]:
    """Read the listing pages of this thread's calls lean: each entry's fields that
    Streamify uses (see ``_ENTRIES``) and the page's own (``IsTruncated``, markers,
    tokens...), as botocore reads them."""
    before = getattr(_active, "on", False)
    _active.on = True
    try:
        yield
    finally:
        _active.on = before


def _local(tag: str) -> str:
    """An element's name without its XML namespace."""
    return tag.rpartition("}")[2]


def _entry(element: ET.Element, fields: dict[str, _Field]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        read = fields.get(name)
        if read is not None:
            entry[name] = read(child.text or "")
    return entry


def _read_page(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
               operation_model: Any, **_: Any) -> None:
    if not getattr(_active, "on", False) or response_dict.get("status_code") != 200:
        return
    entry_name, fields = _ENTRIES[operation_model.name]
    try:
        # The parser botocore itself reads this answer with (expat refuses external
        # entities and, since 2.4.1, entity expansion bombs).
        root = ET.fromstring(response_dict["body"])  # noqa: S314
        page: dict[str, Any] = {}
        entries = []
        for child in root:
            name = _local(child.tag)
            if name == entry_name:
                entries.append(_entry(child, fields))
            elif name in _PAGE_FIELDS:
                page[name] = _PAGE_FIELDS[name](child.text or "")
            elif name == "CommonPrefixes":
                found = child.find("{*}Prefix")
                page.setdefault(name, []).append(
                    {"Prefix": found.text or ""} if found is not None else {})
    except (ET.ParseError, KeyError, ValueError, TypeError):
        return  # botocore reads it, or says why it cannot
    if entries:
        page["Uploads" if entry_name == "Upload" else entry_name] = entries
    customized_response_dict.update(page)
    response_dict["body"] = b""
