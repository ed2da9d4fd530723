"""``UploadService``: the upload lifecycle for one principal at a time, checked.

Both route families (native ``/v1`` and Companion ``/s3``) go through here, so every rule
lives once: keys are validated and must lie inside the caller's prefix, an upload id must
be an open upload of exactly that key, sizes and part numbers are within limits. Only
then does the call reach ``S3ControlPlane``. Every pattern is matched in full
(``re.fullmatch``): a ``$`` would also let a final newline through to S3.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import botocore.exceptions
from anyio import CapacityLimiter

from .._checksum import composite_etag, normalize_etag
from .._config import MAX_PART_SIZE
from .._control import ObjectInfo, OpenUpload, PartToSign, SignedPart, UploadedPart
from .._destination import Destination
from .._errors import StreamifyError
from .._plan import MAX_OBJECT_SIZE, MAX_PARTS, PartPlan, plan_parts
from .._s3control import S3ControlPlane
from ._auth import Principal
from ._keys import KeyRejected, check_key, check_prefix, key_for_filename
from ._listing import CursorRejected, StoredObject, decode_cursor, newest_first
from ._problems import ServiceError, from_core_error
from ._settings import ServiceSettings

__all__ = ["UploadService", "encode_metadata"]

_MAX_METADATA_BYTES = 2048  # S3's limit on user metadata
_METADATA_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,1024}")
_ETAG = re.compile(r'"?[\x21\x23-\x7e]{1,128}"?')
_HEX_MD5 = re.compile(r"[0-9a-f]{32}")
_OWNED_CACHE_SIZE = 10_000
# How long a confirmed (key, upload id) pair is trusted without asking S3 again. This
# instance forgets a pair as soon as it completes or aborts the upload; another instance
# may still sign parts of it for this long, and storage refuses those (NoSuchUpload).
_OWNED_TTL = 60.0
# S3 replaces this in every field of a POST form, the key included.
_FORM_VARIABLE = "${filename}"


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


def _check_upload_id(upload_id: str) -> None:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ServiceError(400, "invalid-upload-id", "upload id must be 1-1024 printable ASCII "
                           "characters")


def _check_md5(md5: str) -> None:
    try:
        raw = base64.b64decode(md5, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ServiceError(400, "invalid-part", f"md5 {md5!r} is not a base64 MD5 digest")


class UploadService:
    """The checked operations; each raises ``ServiceError`` with a clear 4xx on bad input."""

    def __init__(self, settings: ServiceSettings, control: S3ControlPlane) -> None:
        self.settings = settings
        self.control = control
        self.bucket = settings.bucket
        # (key, upload id) pairs already seen open, with when to stop trusting them. An
        # upload id names one upload of one key for good; remembering the pair spares a
        # ListMultipartUploads per signed part (Uppy signs parts one call at a time).
        self._owned: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._owned_lock = threading.Lock()
        # Starting uploads one at a time per principal keeps the open-upload count honest
        # on this instance.
        self._creating: dict[str, threading.Lock] = {}
        # Signing is CPU work (about 0.6 ms a part): a few threads at a time, so a flood of
        # sign calls queues here instead of starving every other request.
        self._signers = CapacityLimiter(settings.sign_concurrency)

    # ------------------------------------------------------------------ checks
    def destination(self, principal: Principal, *, key: str | None = None,
                    filename: str | None = None, bucket: str | None = None) -> Destination:
        """Where ``key`` (or a file called ``filename``) goes for ``principal``."""
        self.check_bucket(bucket)
        if (key is None) == (filename is None):
            raise ServiceError(422, "invalid-request", "give exactly one of key or filename")
        try:
            chosen = (check_key(key) if key is not None
                      else key_for_filename(filename or "", principal.prefix))
        except KeyRejected as exc:
            raise ServiceError(400, "invalid-key", str(exc)) from exc
        if not principal.owns(chosen):
            raise ServiceError(403, "forbidden-key", f"key {chosen!r} is outside your prefix "
                               f"{principal.prefix!r}")
        return Destination(self.bucket, chosen)

    def check_bucket(self, bucket: str | None) -> None:
        """A caller naming a bucket must name this service's bucket."""
        if bucket is not None and bucket != self.bucket:
            raise ServiceError(400, "wrong-bucket", f"this service uploads to bucket "
                               f"{self.bucket!r}, not {bucket!r}")

    def _check_size(self, principal: Principal, size: int, what: str) -> None:
        limit = min(principal.max_object_size, MAX_OBJECT_SIZE)
        if not 0 <= size <= limit:
            raise ServiceError(400, "object-too-large", f"{what} of {size} bytes is outside "
                               f"0..{limit} bytes, the most you may upload")

    def _require_owned(self, destination: Destination, upload_id: str) -> None:
        """Refuse unless ``upload_id`` is an open upload of exactly this key.

        ListMultipartUploads rather than ListParts, because some S3 servers (moto) answer
        ListParts for an upload id under any key, which would let one principal reach
        another's upload by naming its own key.
        """
        _check_upload_id(upload_id)
        pair = (destination.key, upload_id)
        now = time.monotonic()
        with self._owned_lock:
            if self._owned.get(pair, 0.0) > now:
                self._owned.move_to_end(pair)
                return
        with _translated("ListMultipartUploads"):
            uploads = self.control.list_uploads(destination)
        if not any(u.upload_id == upload_id and u.destination.key == destination.key
                   for u in uploads):
            raise ServiceError(404, "upload-gone", f"{destination.key!r} has no open upload "
                               f"{upload_id!r} (it was completed, aborted or expired, or "
                               "belongs to another key)")
        with self._owned_lock:
            self._owned[pair] = now + _OWNED_TTL
            self._owned.move_to_end(pair)
            if len(self._owned) > _OWNED_CACHE_SIZE:
                self._owned.popitem(last=False)

    def _forget(self, destination: Destination, upload_id: str) -> None:
        """The upload is completed or aborted: sign none of its parts any more."""
        with self._owned_lock:
            self._owned.pop((destination.key, upload_id), None)

    def _check_open_uploads(self, principal: Principal) -> None:
        with _translated("ListMultipartUploads"):
            count = len(self.control.list_uploads(Destination(self.bucket, principal.prefix)))
        limit = self.settings.max_open_uploads
        if count >= limit:
            raise ServiceError(409, "too-many-uploads", f"you have {count} open uploads, the "
                               f"most allowed is {limit}: complete or abort one (GET "
                               "/v1/uploads lists them) before starting another")

    # ------------------------------------------------------------------ operations
    def plan(self, principal: Principal, size: int, part_size: int | None) -> PartPlan:
        """How an object of ``size`` bytes will be cut, if ``principal`` may upload it."""
        self._check_size(principal, size, "object")
        with _translated("plan"):
            return plan_parts(size, part_size or self.settings.part_size)

    def create(self, principal: Principal, destination: Destination, *, size: int | None,
               content_type: str, metadata: Mapping[str, object],
               checksum: str = "none") -> str:
        """Start the upload and return its id (``size`` is checked when declared)."""
        if size is not None:
            self._check_size(principal, size, "object")
        encoded = encode_metadata(metadata)
        with self._owned_lock:
            creating = self._creating.setdefault(principal.name, threading.Lock())
        with creating:
            self._check_open_uploads(principal)
            with _translated("CreateMultipartUpload"):
                return self.control.create_upload(
                    destination, content_type=content_type, metadata=encoded,
                    checksum=checksum, size=size)

    def sign(self, principal: Principal, destination: Destination, upload_id: str,
             parts: Sequence[PartToSign], *, expires_in: int | None = None) -> list[SignedPart]:
        if not 1 <= len(parts) <= self.settings.max_sign_batch:
            raise ServiceError(400, "invalid-part", f"sign 1 to {self.settings.max_sign_batch} "
                               f"parts per call, not {len(parts)}")
        numbers = [p.number for p in parts]
        if len(set(numbers)) != len(numbers):
            raise ServiceError(400, "invalid-part", "a part number is listed twice")
        for part in parts:
            if not 1 <= part.number <= MAX_PARTS:
                raise ServiceError(400, "invalid-part", f"part number {part.number} is outside "
                                   f"1..{MAX_PARTS}")
            if part.size is not None:
                if part.size > MAX_PART_SIZE:
                    raise ServiceError(400, "invalid-part", f"part {part.number} of "
                                       f"{part.size} bytes exceeds S3's 5 GiB part limit")
                self._check_size(principal, part.size, f"part {part.number}")
            if part.md5 is not None:
                _check_md5(part.md5)
        expiry = min(expires_in or self.settings.url_expiry, self.settings.url_expiry)
        self._require_owned(destination, upload_id)
        with _translated("UploadPart (presign)"):
            return self.control.sign_parts(destination, upload_id, parts, expires_in=expiry)

    async def sign_in_turn(self, principal: Principal, destination: Destination,
                           upload_id: str, parts: Sequence[PartToSign], *,
                           expires_in: int | None = None) -> list[SignedPart]:
        """``sign`` in a worker thread, at most ``sign_concurrency`` at once."""
        return await anyio.to_thread.run_sync(
            functools.partial(self.sign, principal, destination, upload_id, parts,
                              expires_in=expires_in), limiter=self._signers)

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        self._require_owned(destination, upload_id)
        with _translated("ListParts"):
            return self.control.list_parts(destination, upload_id)

    def complete(self, principal: Principal, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        """Complete, or confirm a completion that already happened with the same parts.

        An upload whose parts add up to more than the caller may store is aborted, so
        nothing of it stays stored (and billed).
        """
        if not 1 <= len(parts) <= MAX_PARTS:
            raise ServiceError(400, "invalid-part", f"complete with 1 to {MAX_PARTS} parts, "
                               f"not {len(parts)}")
        numbers = [p.number for p in parts]
        if len(set(numbers)) != len(numbers) or not all(1 <= n <= MAX_PARTS for n in numbers):
            raise ServiceError(400, "invalid-part", f"part numbers must be distinct and within "
                               f"1..{MAX_PARTS}")
        if not all(_ETAG.fullmatch(p.etag) for p in parts):
            raise ServiceError(400, "invalid-part", "an ETag is not a quoted or bare token")
        ordered = sorted((UploadedPart(p.number, normalize_etag(p.etag), p.size, p.checksum)
                          for p in parts), key=lambda p: p.number)
        try:
            self._require_owned(destination, upload_id)
            with _translated("ListParts"):
                held = {p.number: p.size for p in self.control.list_parts(destination, upload_id)}
            # Browsers declare no size up front: the caller's limit is enforced here.
            total = sum(held.get(n, 0) for n in numbers)
            try:
                self._check_size(principal, total, "object")
            except ServiceError as refused:
                self.abort(destination, upload_id)
                refused.detail += "; the upload was aborted and its parts deleted"
                raise
            with _translated("CompleteMultipartUpload"):
                info = self.control.complete(destination, upload_id, ordered)
            self._forget(destination, upload_id)
            return info
        except ServiceError as exc:
            if exc.status != 404:
                raise
            # The upload is gone: if the object there is the one these parts make, this is
            # a repeated completion whose first answer was lost. Say it succeeded again.
            done = self._already_completed(destination, ordered)
            if done is None:
                raise
            return done

    def _already_completed(self, destination: Destination,
                           parts: Sequence[UploadedPart]) -> ObjectInfo | None:
        if not all(_HEX_MD5.fullmatch(p.etag) for p in parts):
            return None
        info = self.head(destination)
        if info is not None and info.etag == composite_etag(p.etag for p in parts):
            return info
        return None

    def abort(self, destination: Destination, upload_id: str) -> None:
        self._require_owned(destination, upload_id)
        with _translated("AbortMultipartUpload"):
            self.control.abort(destination, upload_id)
        self._forget(destination, upload_id)

    def _owned_prefix(self, principal: Principal, prefix: str | None) -> Destination:
        """``prefix`` (default: the caller's own), if it lies inside the caller's."""
        chosen = principal.prefix if prefix is None else prefix
        try:
            check_prefix(chosen)
        except KeyRejected as exc:
            raise ServiceError(400, "invalid-key", str(exc)) from exc
        if not principal.owns(chosen):
            raise ServiceError(403, "forbidden-key", f"prefix {chosen!r} is outside your "
                               f"prefix {principal.prefix!r}")
        return Destination(self.bucket, chosen)

    def list_uploads(self, principal: Principal, prefix: str | None) -> list[OpenUpload]:
        where = self._owned_prefix(principal, prefix)
        with _translated("ListMultipartUploads"):
            return self.control.list_uploads(where)

    def list_objects(self, principal: Principal, prefix: str | None, *, limit: int,
                     cursor: str | None = None) -> tuple[list[StoredObject], str | None]:
        """The caller's completed objects under ``prefix``, newest first: one page of at
        most ``limit``, and the cursor of the next page (``None`` after the last).

        Every key under the prefix is read (ListObjectsV2, 1,000 a call) because S3 lists
        in key order only; memory holds at most ``limit + 1`` of them.
        """
        where = self._owned_prefix(principal, prefix)
        try:
            after = decode_cursor(cursor) if cursor is not None else None
        except CursorRejected as exc:
            raise ServiceError(400, "invalid-cursor", str(exc)) from exc
        with _translated("ListObjectsV2"):
            return newest_first(self._stored_objects(where), limit=limit, after=after)

    def _stored_objects(self, where: Destination) -> Iterator[StoredObject]:
        for listed in self.control.list_objects(where):
            yield StoredObject(key=listed.destination.key, size=listed.size, etag=listed.etag,
                               last_modified=listed.last_modified)

    def head(self, destination: Destination) -> ObjectInfo | None:
        with _translated("HeadObject"):
            return self.control.head(destination)

    def presign_post(self, principal: Principal, destination: Destination, *,
                     content_type: str, metadata: Mapping[str, object]
                     ) -> tuple[str, dict[str, str]]:
        """A presigned single-request POST (an S3 form upload): its URL and form fields.

        The signed policy binds the key, content type and metadata, and a
        ``content-length-range`` up to the caller's object size limit, so storage itself
        refuses a larger body.
        """
        if _FORM_VARIABLE in destination.key:
            raise ServiceError(400, "invalid-key", f"key {destination.key!r} contains "
                               f"{_FORM_VARIABLE}, which storage would replace in a form "
                               "upload; rename the file or upload it in parts")
        encoded = encode_metadata(metadata)
        fields = {"Content-Type": content_type}
        fields.update({f"x-amz-meta-{name}": value for name, value in encoded.items()})
        limit = min(principal.max_object_size, MAX_OBJECT_SIZE)
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", 0, limit])
        with _translated("PostObject (presign)"):
            try:
                post = self.control.client.generate_presigned_post(
                    destination.bucket, destination.key, Fields=fields, Conditions=conditions,
                    ExpiresIn=self.settings.url_expiry)
            except botocore.exceptions.BotoCoreError as exc:
                raise StreamifyError(f"presigning a form upload to {destination}") from exc
        return str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()}

    def location(self, destination: Destination) -> str:
        """The object's URL, as S3 reports it in a completion."""
        key = quote(destination.key)
        if self.settings.s3_endpoint_url:
            return f"{self.settings.s3_endpoint_url.rstrip('/')}/{destination.bucket}/{key}"
        return f"https://{destination.bucket}.s3.{self.settings.region}.amazonaws.com/{key}"


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn a core error raised inside ``with`` into the ``ServiceError`` to answer;
    ``operation`` (the S3 call) goes into the storage-failure log line."""
    try:
        yield
    except StreamifyError as exc:
        raise from_core_error(exc, operation) from exc
