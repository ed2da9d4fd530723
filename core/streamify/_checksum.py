"""Checksum maths: part MD5s, composite ETags, S3 additional checksums and the full-object
CRC64NVME combined from the parts'. No I/O.

CRC64NVME comes from ``awscrt`` (the ``crc`` extra), imported when first used.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable
from functools import cache

from ._errors import ConfigError

__all__ = [
    "additional_checksum",
    "checksum_algorithm",
    "composite_etag",
    "full_object_checksum",
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


@cache
def _awscrt_checksums() -> tuple[Callable[[bytes | memoryview], int],
                                Callable[[int, int, int], int]]:
    """``awscrt``'s CRC64NVME and its combine, or a ``ConfigError`` saying how to get them."""
    try:
        from awscrt import checksums
    except ImportError:
        raise ConfigError(
            "checksum 'crc64nvme' needs the awscrt package: pip install 'streamify[crc]'",
            parameter="checksum") from None
    return checksums.crc64nvme, checksums.combine_crc64nvme


def additional_checksum(algorithm: str, data: bytes | memoryview) -> str | None:
    """Base64 value of an S3 additional checksum (``crc32``, ``sha1``, ``sha256``,
    ``crc64nvme``); ``None`` for ``none``."""
    if algorithm == "none":
        return None
    if algorithm == "crc32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "sha1":
        raw = hashlib.sha1(data, usedforsecurity=False).digest()
    elif algorithm == "sha256":
        raw = hashlib.sha256(data).digest()
    elif algorithm == "crc64nvme":
        crc64nvme, _ = _awscrt_checksums()
        raw = crc64nvme(data).to_bytes(8, "big")
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}")
    return base64.b64encode(raw).decode()


def full_object_checksum(parts: Iterable[tuple[str, int]]) -> str:
    """The CRC64NVME of a whole object, in base64, from its parts' ``(base64 CRC64NVME,
    size)`` in order: what S3 reports for a multipart upload of type FULL_OBJECT."""
    _, combine = _awscrt_checksums()
    crc: int | None = None
    for value, size in parts:
        part = int.from_bytes(base64.b64decode(value), "big")
        crc = part if crc is None else combine(crc, part, size)
    if crc is None:
        raise ValueError("an object has at least one part")
    return base64.b64encode(crc.to_bytes(8, "big")).decode()


_ALGORITHM_BY_LENGTH = {8: "crc32", 12: "crc64nvme", 28: "sha1", 44: "sha256"}


def checksum_algorithm(value: str) -> str:
    """Which additional checksum a base64 value is, told by its length (4, 8, 20, 32 bytes).

    Read from the value itself because not every S3 server reports an upload's algorithm.
    """
    try:
        return _ALGORITHM_BY_LENGTH[len(value)]
    except KeyError:
        raise ValueError(f"{value!r} is not a crc32, crc64nvme, sha1 or sha256 checksum") \
            from None
