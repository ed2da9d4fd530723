"""What caller input must look like before it reaches S3, and core errors turned into the
``ServiceError`` to answer. No I/O."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterator, Mapping

from .._errors import StreamifyError
from ._problems import ServiceError, from_core_error

__all__ = ["check_md5", "check_upload_id", "encode_metadata", "translated"]

_MAX_METADATA_BYTES = 2048  # S3's limit on user metadata
_METADATA_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,1024}")


def encode_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    """Metadata S3 accepts: ASCII names, values RFC 2047-encoded when not ASCII.

    ``None`` values are dropped and others turned into text, because browsers send
    whatever the page attached to the file.
    """
    encoded: dict[str, str] = {}
    for name, value in metadata.items():
        if value is None:
            continue
        if not _METADATA_NAME.fullmatch(name):
            raise ServiceError(400, "invalid-metadata", f"metadata name {name!r} must be "
                               "1-128 ASCII letters, digits, '-' or '_'")
        text = value if isinstance(value, str) else str(value)
        if text.isascii() and text.isprintable():
            encoded[name] = text
        else:
            encoded[name] = f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="
    if sum(len(k) + len(v) for k, v in encoded.items()) > _MAX_METADATA_BYTES:
        raise ServiceError(400, "invalid-metadata",
                           f"metadata exceeds S3's {_MAX_METADATA_BYTES}-byte limit")
    return encoded


def check_upload_id(upload_id: str) -> None:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ServiceError(400, "invalid-upload-id", "upload id must be 1-1024 printable ASCII "
                           "characters")


def check_md5(md5: str) -> None:
    try:
        raw = base64.b64decode(md5, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ServiceError(400, "invalid-part", f"md5 {md5!r} is not a base64 MD5 digest")



@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Turn a core error raised inside ``with`` into the ``ServiceError`` to answer;
    ``operation`` (the S3 call) goes into the storage-failure log line."""
    try:
        yield
    except StreamifyError as exc:
        raise from_core_error(exc, operation) from exc
