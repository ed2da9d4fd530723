"""The ``ControlPlane`` interface: the small JSON side of a multipart upload.

Two implementations share it: ``S3ControlPlane`` talks to S3 with credentials (trusted
clients), ``HttpControlPlane`` talks to the Streamify API service (untrusted clients).
The bytes never go through a control plane: it only hands out presigned part URLs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ._destination import Destination

__all__ = [
    "ControlPlane",
    "ListedObject",
    "ObjectInfo",
    "ObjectLister",
    "ObjectSigner",
    "OpenUpload",
    "PartToSign",
    "SignedPart",
    "UploadedPart",
]


@dataclass(frozen=True, slots=True)
class PartToSign:
    """A part the client is about to send; ``md5`` (base64) and ``checksum`` get signed in."""

    number: int
    size: int | None = None
    md5: str | None = None
    checksum: str | None = None
    """Base64 value of the upload's additional checksum algorithm for this part."""


@dataclass(frozen=True, slots=True)
class SignedPart:
    """A presigned URL for one part, with the headers the PUT must carry."""

    number: int
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    expires_in: int = 0


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part S3 holds (from ListParts or from a successful PUT)."""

    number: int
    etag: str
    size: int
    checksum: str | None = None
    last_modified: float | None = field(default=None, compare=False)
    """When S3 received it (seconds since the epoch), where the listing says."""


@dataclass(frozen=True, slots=True)
class OpenUpload:
    """A multipart upload that was started and neither completed nor aborted."""

    destination: Destination
    upload_id: str
    initiated: float
    """Seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str
    checksum: str | None = None
    """The object's full-object CRC64NVME (base64), where the store reports one."""


@dataclass(frozen=True, slots=True)
class ListedObject:
    """A completed object, as a listing of its prefix shows it."""

    destination: Destination
    size: int
    etag: str
    last_modified: float
    """Seconds since the epoch."""


class ControlPlane(Protocol):
    """Upload lifecycle operations. Errors are raised as ``StreamifyError`` subclasses."""

    @property
    def endpoint(self) -> str:
        """Identifies the storage behind this control plane (keys the resume state)."""
        ...

    sign_linger: float
    """Seconds the first signing call waits for more parts to sign together; later calls
    group what arrives while one is in flight (0: signing is local and free, no groups)."""

    def create_upload(
        self,
        destination: Destination,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        checksum: str,
        size: int | None = None,
    ) -> str:
        """Start a multipart upload and return its upload id."""
        ...

    def sign_parts(
        self, destination: Destination, upload_id: str, parts: Sequence[PartToSign],
        *, expires_in: int,
    ) -> list[SignedPart]:
        """Presign a PUT URL for each part, in the order given."""
        ...

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        """Every part S3 holds for the upload (all pages). ``UploadGoneError`` if gone."""
        ...

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        """Open uploads whose key starts with ``destination.key``, oldest first."""
        ...

    def complete(
        self, destination: Destination, upload_id: str, parts: Sequence[UploadedPart],
    ) -> ObjectInfo:
        """Ask S3 to assemble the object; returns its size and ETag as read back."""
        ...

    def abort(self, destination: Destination, upload_id: str) -> None:
        """Abort the upload and let S3 free its parts."""
        ...

    def head(self, destination: Destination) -> ObjectInfo | None:
        """The object's size and ETag, or ``None`` when there is no such object."""
        ...

    def close(self) -> None:
        """Release its connections. Whoever made the control plane closes it."""
        ...


@runtime_checkable
class ObjectSigner(Protocol):
    """A control plane that can also presign one whole-object PUT (``PutObject``).

    A file that fits in one part is sent that way: one request instead of a multipart
    upload's create, part and complete, and nothing to resume (a rerun sends at most one
    part again). Control planes without it upload such a file as a one-part multipart
    upload."""

    def sign_object(self, destination: Destination, part: PartToSign, *, content_type: str,
                    metadata: Mapping[str, str], expires_in: int) -> SignedPart:
        """Presign a PUT of the whole object (``part.number`` is 1), headers included."""
        ...


@runtime_checkable
class ObjectLister(Protocol):
    """A control plane that can also list the completed objects under a prefix.

    A command that uploads many files under one prefix lists it once instead of asking
    for each file whether it is already there (``PrefixSnapshot``)."""

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        """Every completed object whose key starts with ``prefix.key``, a page of
        ``page_size`` per request to the store."""
        ...
