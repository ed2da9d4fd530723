"""``DeclaredUpload``: an upload id that carries the size declared when it was created.

Uppy's Companion protocol declares no part sizes, only the file's size when the upload is
created (``metadata.size``). The service answers that call with S3's upload id followed by
the declared size, the part size of the plan and an HMAC of them and the key, all under
the cookie secret every replica shares: ``<S3 upload id>~<size>.<part size>.<mac>``. Uppy
hands that id back on every later call, so any replica recovers the plan without storing
anything or asking S3, and can sign each part's exact ``Content-Length``. No I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .._plan import PartPlan

__all__ = ["DeclaredUpload", "UploadIdAltered", "declare", "read_declared"]

_TAIL = re.compile(r"([0-9]{1,16})\.([0-9]{1,11})\.([A-Za-z0-9_-]{22})")


class UploadIdAltered(ValueError):
    """An upload id carries a declared size whose HMAC does not match."""


@dataclass(frozen=True, slots=True)
class DeclaredUpload:
    """An upload and the plan its parts must follow."""

    upload_id: str
    """S3's own upload id."""
    plan: PartPlan


def _mac(secret: bytes, key: str, upload_id: str, size: int, part_size: int) -> str:
    message = f"declared upload\n{key}\n{upload_id}\n{size}\n{part_size}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def declare(secret: bytes, key: str, upload_id: str, plan: PartPlan) -> str:
    """The id to hand to a client for S3's ``upload_id`` of ``key``, cut as ``plan``."""
    mac = _mac(secret, key, upload_id, plan.size, plan.part_size)
    return f"{upload_id}~{plan.size}.{plan.part_size}.{mac}"


def read_declared(secret: bytes, key: str, given: str, *,
                  previous: Sequence[bytes] = ()) -> DeclaredUpload | None:
    """The upload ``given`` names, if it carries a declared size; ``None`` for an id as S3
    made it. ``UploadIdAltered`` when the declaration was changed or made for another key.
    An id made under one of the ``previous`` secrets is read too (a secret being rotated).
    """
    upload_id, separator, tail = given.rpartition("~")
    found = _TAIL.fullmatch(tail) if separator else None
    if found is None:
        return None  # S3's own id (radosgw's ids hold a "~" too)
    size, part_size = int(found[1]), int(found[2])
    if not any(hmac.compare_digest(found[3], _mac(each, key, upload_id, size, part_size))
               for each in (secret, *previous)):
        raise UploadIdAltered(f"upload id {given!r} was not made for key {key!r} by this "
                              "service")
    return DeclaredUpload(upload_id, PartPlan(size=size, part_size=part_size))
