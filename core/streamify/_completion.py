"""Completing a multipart upload: S3 assembles the object, and it is checked to be what was
sent (size, composite ETag, full-object CRC64NVME), also when the answer to complete was
lost and the retry finds the upload gone."""

from __future__ import annotations

import logging

from ._checksum import checksum_algorithm, composite_etag, full_object_checksum
from ._control import ControlPlane, ObjectInfo, UploadedPart
from ._destination import Destination
from ._errors import IntegrityError, UploadGoneError

__all__ = ["complete_upload"]

_log = logging.getLogger("streamify")


def complete_upload(control: ControlPlane, destination: Destination, upload_id: str,
                    size: int, parts: list[UploadedPart], source_name: str, *,
                    etags_are_md5s: bool = True) -> ObjectInfo:
    """Assemble the object from ``parts`` (in order) and check it is what was sent: its
    size, its ETag when the parts' ETags are their MD5s (not so under SSE-KMS/SSE-C or
    without Content-MD5), and its full-object CRC64NVME when the parts carry theirs and the
    store reports it."""
    expected = composite_etag(p.etag for p in parts) if etags_are_md5s else None
    crc = (full_object_checksum((p.checksum or "", p.size) for p in parts)
           if parts and all(p.checksum and checksum_algorithm(p.checksum) == "crc64nvme"
                            for p in parts) else None)
    try:
        info = control.complete(destination, upload_id, parts)
    except UploadGoneError:
        # A completion that succeeded but whose answer was lost looks like this on retry.
        info_or_none = control.head(destination)
        if info_or_none is None or expected is None or info_or_none.etag != expected:
            raise
        info = info_or_none
    if info.size != size or (expected and "-" in info.etag and info.etag != expected):
        raise IntegrityError(
            f"{destination} was assembled but does not match {source_name} "
            f"(size {info.size} vs {size}, ETag {info.etag} vs {expected}); the "
            "object was left in place: delete it and upload again")
    if crc is not None and info.checksum is not None and info.checksum != crc:
        raise IntegrityError(
            f"{destination} was assembled but its CRC64NVME {info.checksum} is not the "
            f"{crc} of the parts sent from {source_name}; the object was left in place: "
            "delete it and upload again")
    if crc is not None and info.checksum is None and expected is None:
        _log.warning("%s: storage reported no CRC64NVME for the assembled object (it may not "
                     "verify additional checksums at all: keep Content-MD5 on for such a "
                     "store); only its size, %d bytes, was checked", destination, info.size)
    return info
