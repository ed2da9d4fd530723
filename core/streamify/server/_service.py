"""``UploadService``: the upload lifecycle for one principal at a time, checked.

Both route families (native ``/v1`` and Companion ``/s3``) go through here, so every rule
lives once: keys are validated and must lie inside the caller's prefix, an upload id must
be an open upload of exactly that key, sizes and part numbers are within limits. Only
then does the call reach ``S3ControlPlane``. Every pattern is matched in full
(``re.fullmatch``): a ``$`` would also let a final newline through to S3.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import botocore.exceptions
from anyio import CapacityLimiter

from .._checksum import composite_etag, normalize_etag
from .._config import MAX_PART_SIZE
from .._control import (
    ListedObject,
    ObjectInfo,
    OpenUpload,
    PartToSign,
    SignedPart,
    UploadedPart,
)
from .._destination import Destination
from .._errors import StreamifyError
from .._plan import MAX_OBJECT_SIZE, MAX_PARTS, PartPlan, plan_parts
from .._s3control import S3ControlPlane
from ._auth import Principal
from ._checks import check_md5, check_upload_id, encode_metadata, translated
from ._declared import DeclaredUpload, UploadIdAltered, declare, read_declared
from ._keys import KeyRejected, check_key, check_prefix, key_for_filename
from ._limits import LocalLocks, PrincipalLocks
from ._listing import CursorRejected, decode_cursor, encode_cursor
from ._metrics import ServiceMetrics
from ._problems import ServiceError
from ._settings import ServiceSettings

__all__ = ["UploadService"]

_ETAG = re.compile(r'"?[\x21\x23-\x7e]{1,128}"?')
_HEX_MD5 = re.compile(r"[0-9a-f]{32}")
_OWNED_CACHE_SIZE = 10_000
_PARTS_SIGNED_ON_THE_LOOP = 10
"""A sign call of at most this many parts may run on the event loop (about 0.5 ms)."""
# How long a confirmed (key, upload id) pair is trusted without asking S3 again. This
# instance forgets a pair as soon as it completes or aborts the upload; another instance
# may still sign parts of it for this long, and storage refuses those (NoSuchUpload).
_OWNED_TTL = 60.0
# S3 replaces this in every field of a POST form, the key included.
_FORM_VARIABLE = "${filename}"


class UploadService:
    """The checked operations; each raises ``ServiceError`` with a clear 4xx on bad input."""

    def __init__(self, settings: ServiceSettings, control: S3ControlPlane, *,
                 creating: PrincipalLocks | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self.control = control
        self.bucket = settings.bucket
        # Every replica shares it, so any of them reads the sizes another declared.
        self._secret = settings.cookie_secret.get_secret_value().encode()
        # Ids made under a secret being rotated out are still read.
        self._previous = tuple(s.get_secret_value().encode()
                               for s in settings.previous_cookie_secrets)
        # (key, upload id) pairs already seen open, with when to stop trusting them. An
        # upload id names one upload of one key for good; remembering the pair spares a
        # ListMultipartUploads per signed part (Uppy signs parts one call at a time).
        self._owned: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._owned_lock = threading.Lock()
        # Starting uploads one at a time per principal keeps the open-upload count honest:
        # on this instance by default, on every replica with locks shared through Redis.
        self._creating: PrincipalLocks = creating if creating is not None else LocalLocks()
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
        check_upload_id(upload_id)
        pair = (destination.key, upload_id)
        now = time.monotonic()
        with self._owned_lock:
            if self._owned.get(pair, 0.0) > now:
                self._owned.move_to_end(pair)
                return
        with translated("ListMultipartUploads"):
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

    def _owned_now(self, destination: Destination, given: str) -> bool:
        """Whether the upload in ``given`` is known, from a recent check, to be an open
        upload of this key (so ``_require_owned`` asks storage nothing)."""
        try:
            upload_id, _ = self._upload(destination, given)
        except ServiceError:
            return False  # refused by ``sign`` itself, in a thread like any unknown upload
        with self._owned_lock:
            return self._owned.get((destination.key, upload_id), 0.0) > time.monotonic()

    def _forget(self, destination: Destination, upload_id: str) -> None:
        """The upload is completed or aborted: sign none of its parts any more."""
        with self._owned_lock:
            self._owned.pop((destination.key, upload_id), None)

    def _upload(self, destination: Destination,
                given: str) -> tuple[str, DeclaredUpload | None]:
        """S3's upload id in ``given``, and the size declared with it, if any."""
        check_upload_id(given)
        try:
            declared = read_declared(self._secret, destination.key, given,
                                     previous=self._previous)
        except UploadIdAltered as exc:
            # As for an upload id of another key: no such upload here.
            raise ServiceError(404, "upload-gone", str(exc)) from exc
        return (given, None) if declared is None else (declared.upload_id, declared)

    def _check_open_uploads(self, principal: Principal) -> None:
        with translated("ListMultipartUploads"):
            count = self.control.count_uploads(Destination(self.bucket, principal.prefix),
                                               at_most=self.settings.max_open_uploads)
        limit = self.settings.max_open_uploads
        if count >= limit:
            raise ServiceError(409, "too-many-uploads", f"you have {limit} or more open "
                               f"uploads, the most allowed: complete or abort one (GET "
                               "/v1/uploads lists them) before starting another")

    # ------------------------------------------------------------------ operations
    def plan(self, principal: Principal, size: int, part_size: int | None) -> PartPlan:
        """How an object of ``size`` bytes will be cut, if ``principal`` may upload it."""
        self._check_size(principal, size, "object")
        with translated("plan"):
            return plan_parts(size, part_size or self.settings.part_size)

    def create(self, principal: Principal, destination: Destination, *, size: int | None,
               content_type: str, metadata: Mapping[str, object],
               checksum: str = "none") -> str:
        """Start the upload and return its id (``size`` is checked when declared)."""
        if size is not None:
            self._check_size(principal, size, "object")
        encoded = encode_metadata(metadata)
        with self._creating.hold(principal.name):
            self._check_open_uploads(principal)
            with translated("CreateMultipartUpload"):
                upload_id = self.control.create_upload(
                    destination, content_type=content_type, metadata=encoded,
                    checksum=checksum, size=size)
        self.metrics.uploads_created.inc()
        self.metrics.declared_bytes.inc(size or 0)
        return upload_id

    def create_declared(self, principal: Principal, destination: Destination, *, size: int,
                        content_type: str, metadata: Mapping[str, object]) -> str:
        """Start the upload of a file of ``size`` bytes, cut as ``plan`` says, and return an
        id that carries the plan: each part is then signed with its exact size."""
        plan = self.plan(principal, size, None)
        upload_id = self.create(principal, destination, size=size, content_type=content_type,
                                metadata=metadata)
        return declare(self._secret, destination.key, upload_id, plan)

    def sign(self, principal: Principal, destination: Destination, upload_id: str,
             parts: Sequence[PartToSign], *, expires_in: int | None = None,
             declared_only: bool = False) -> list[SignedPart]:
        """Presign ``parts``; those of an upload with a declared size are signed with their
        size in its plan. ``declared_only`` refuses an upload without one."""
        upload_id, declared = self._upload(destination, upload_id)
        if declared is not None:
            self._check_size(principal, declared.plan.size, "the declared object")
            parts = [self._as_planned(declared, part) for part in parts]
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
                check_md5(part.md5)
        expiry = min(expires_in or self.settings.url_expiry, self.settings.url_expiry)
        self._require_owned(destination, upload_id)
        if declared is None and declared_only:
            raise ServiceError(400, "size-not-declared", f"upload {upload_id!r} was started "
                               "without the file's size: start it again with "
                               "POST /s3/multipart and metadata.size")
        with translated("UploadPart (presign)"):
            signed = self.control.sign_parts(destination, upload_id, parts, expires_in=expiry)
        self.metrics.urls_signed.inc(len(signed))
        return signed

    @staticmethod
    def _as_planned(declared: DeclaredUpload, part: PartToSign) -> PartToSign:
        if not 1 <= part.number <= declared.plan.count:
            raise ServiceError(400, "invalid-part", f"part {part.number} is outside the "
                               f"declared object's 1..{declared.plan.count} parts")
        size = declared.plan.part(part.number).size
        if part.size is not None and part.size != size:
            raise ServiceError(400, "invalid-part", f"part {part.number} is {size} bytes in "
                               f"the declared object's plan, not {part.size}")
        return dataclasses.replace(part, size=size)

    async def sign_in_turn(self, principal: Principal, destination: Destination,
                           upload_id: str, parts: Sequence[PartToSign], *,
                           expires_in: int | None = None,
                           declared_only: bool = False) -> list[SignedPart]:
        """``sign`` in a worker thread, at most ``sign_concurrency`` at once; or at once on
        the event loop when it cannot wait on anything: a few parts, of an upload whose
        ownership was checked within ``_OWNED_TTL``, presigned by computation only (the
        hop to a thread cost about a tenth of a one-part sign call)."""
        if (len(parts) <= _PARTS_SIGNED_ON_THE_LOOP
                and self._owned_now(destination, upload_id)
                and self.control.signs_without_io):
            return self.sign(principal, destination, upload_id, parts,
                             expires_in=expires_in, declared_only=declared_only)
        return await anyio.to_thread.run_sync(
            functools.partial(self.sign, principal, destination, upload_id, parts,
                              expires_in=expires_in, declared_only=declared_only),
            limiter=self._signers)

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        upload_id, _ = self._upload(destination, upload_id)
        self._require_owned(destination, upload_id)
        with translated("ListParts"):
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
        upload_id, _ = self._upload(destination, upload_id)
        ordered = sorted((UploadedPart(p.number, normalize_etag(p.etag), p.size, p.checksum)
                          for p in parts), key=lambda p: p.number)
        try:
            self._require_owned(destination, upload_id)
            with translated("ListParts"):
                held = {p.number: p.size for p in self.control.list_parts(destination, upload_id)}
            # Browsers declare no size up front: the caller's limit is enforced here.
            total = sum(held.get(n, 0) for n in numbers)
            try:
                self._check_size(principal, total, "object")
            except ServiceError as refused:
                self.abort(destination, upload_id)
                refused.detail += "; the upload was aborted and its parts deleted"
                raise
            with translated("CompleteMultipartUpload"):
                info = self.control.complete(destination, upload_id, ordered)
            self.metrics.uploads_completed.inc()
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
        upload_id, _ = self._upload(destination, upload_id)
        self._require_owned(destination, upload_id)
        with translated("AbortMultipartUpload"):
            self.control.abort(destination, upload_id)
        self.metrics.uploads_aborted.inc()
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
        with translated("ListMultipartUploads"):
            return self.control.list_uploads(where)

    def list_objects(self, principal: Principal, prefix: str | None, *, limit: int,
                     cursor: str | None = None) -> tuple[list[ListedObject], str | None]:
        """The caller's completed objects under ``prefix``, in key order: one page of at
        most ``limit``, read with one ListObjectsV2 call, and the cursor of the next page
        (``None`` after the last)."""
        where = self._owned_prefix(principal, prefix)
        try:
            after = decode_cursor(cursor) if cursor is not None else None
        except CursorRejected as exc:
            raise ServiceError(400, "invalid-cursor", str(exc)) from exc
        with translated("ListObjectsV2"):
            page, more = self.control.list_objects_page(where, limit=limit, after=after)
        return page, encode_cursor(page[-1].destination.key) if more and page else None

    def head(self, destination: Destination) -> ObjectInfo | None:
        with translated("HeadObject"):
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
        with translated("PostObject (presign)"):
            try:
                post = self.control.client.generate_presigned_post(
                    destination.bucket, destination.key, Fields=fields, Conditions=conditions,
                    ExpiresIn=self.settings.url_expiry)
            except botocore.exceptions.BotoCoreError as exc:
                raise StreamifyError(f"presigning a form upload to {destination}") from exc
        self.metrics.urls_signed.inc()
        return str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()}

    def location(self, destination: Destination) -> str:
        """The object's URL, as S3 reports it in a completion."""
        key = quote(destination.key)
        if self.settings.s3_endpoint_url:
            return f"{self.settings.s3_endpoint_url.rstrip('/')}/{destination.bucket}/{key}"
        return f"https://{destination.bucket}.s3.{self.settings.region}.amazonaws.com/{key}"
