"""Checksum maths: part MD5s, composite ETags and S3 additional checksums. No I/O."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable

__all__ = [
    "additional_checksum",
    "checksum_algorithm",
    "composite_etag",
    "md5_base64",
    "md5_hex_from_base64",
    "normalize_etag",
]


def md5_base64(data: bytes | memoryview) -> str:
    """The value of a ``Content-MD5`` header for ``data``."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def md5_hex_from_base64(value: str) -> str:
    return base64.b64decode(value).hex()


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def composite_etag(part_md5_hex: Iterable[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, dash, count."""
    digests = [bytes.fromhex(normalize_etag(h)) for h in part_md5_hex]
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def additional_checksum(algorithm: str, data: bytes | memoryview) -> str | None:
    """Base64 value of an S3 additional checksum (``crc32``, ``sha1``, ``sha256``)."""
    if algorithm == "none":
        return None
    if algorithm == "crc32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "sha1":
        raw = hashlib.sha1(data, usedforsecurity=False).digest()
    elif algorithm == "sha256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}")
    return base64.b64encode(raw).decode()


_ALGORITHM_BY_LENGTH = {8: "crc32", 28: "sha1", 44: "sha256"}


def checksum_algorithm(value: str) -> str:
    """Which additional checksum a base64 value is, told by its length (4, 20, 32 bytes).

    Read from the value itself because not every S3 server reports an upload's algorithm.
    """
    try:
        return _ALGORITHM_BY_LENGTH[len(value)]
    except KeyError:
        raise ValueError(f"{value!r} is not a crc32, sha1 or sha256 checksum") from None
