"""The native routes under ``/v1``: JSON, batch signing, problem details on errors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .._config import MAX_PART_SIZE
from .._control import PartToSign, UploadedPart
from .._plan import MAX_OBJECT_SIZE, MAX_PARTS
from ._auth import SESSION_COOKIE, Principal
from ._deps import CurrentPrincipal, Service, UnchargedPrincipal, bearer_principal, charge
from ._keys import MAX_KEY_BYTES
from ._listing import MAX_PAGE, listing_cost
from ._problems import Problem, ServiceError

__all__ = ["router"]

_PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}},
             "description": description}
    for status, description in [
        (400, "Invalid key, size, part, bucket or cursor"), (401, "No or wrong credentials"),
        (403, "Key outside the caller's prefix, or a cross-origin cookie request"),
        (404, "No such upload"), (408, "Request body too slow"),
        (409, "Too many open uploads"), (413, "Request body too large"),
        (422, "Malformed request"), (429, "Rate limit reached: retry after `Retry-After`"),
        (502, "Storage failed"),
    ]}

router = APIRouter(prefix="/v1", responses=_PROBLEMS)

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_BYTES,
                           description="Object key, inside the caller's prefix")]
Text = Annotated[str, Field(max_length=1024, pattern=r"^[\x20-\x7e]*$")]
Bucket = Annotated[str | None, Field(default=None, max_length=63,
                                     description="Must be the service's bucket if given")]


DEFAULT_LISTING = 50
"""Objects per page of ``GET /v1/objects`` by default (at most ``MAX_PAGE``)."""

# Base64 of a CRC32 (4 bytes), SHA-1 (20) or SHA-256 (32): the length tells the algorithm.
Checksum = Annotated[str | None, Field(
    max_length=44, pattern=r"^(?:[A-Za-z0-9+/]{6}==|[A-Za-z0-9+/]{27}=|[A-Za-z0-9+/]{43}=)$",
    description="Base64 CRC32, SHA-1 or SHA-256 of the part")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUploadRequest(_Model):
    filename: Annotated[str | None, Field(max_length=MAX_KEY_BYTES)] = None
    """Placed under the caller's prefix (last path component, sanitized)."""
    key: Key | None = None
    bucket: Bucket = None
    size: Annotated[int, Field(ge=0)]
    part_size: Annotated[int | None, Field(ge=5 * 1024**2, le=5 * 1024**3)] = None
    content_type: Annotated[str, Field(min_length=1, max_length=255,
                                       pattern=r"^[\x20-\x7e]+$")] = "application/octet-stream"
    metadata: dict[Annotated[str, Field(max_length=128)], Text] = {}
    checksum: Literal["none", "crc32", "sha1", "sha256"] = "none"


class CreatedUpload(_Model):
    upload_id: str
    key: str
    bucket: str
    part_size: int
    parts: int


class PartPlanResponse(_Model):
    size: int
    part_size: int
    """Every part is this size but the last."""
    parts: int
    """One part is sent in one request, not as a multipart upload."""


class PartToSignModel(_Model):
    number: Annotated[int, Field(ge=1, le=MAX_PARTS)]
    size: Annotated[int | None, Field(ge=0)] = None
    md5: Annotated[str | None, Field(max_length=64, description="Base64 MD5 of the body")] = None
    checksum: Checksum = None


class SignRequest(_Model):
    key: Key
    bucket: Bucket = None
    parts: Annotated[list[PartToSignModel], Field(min_length=1, max_length=MAX_PARTS)]
    expires_in: Annotated[int | None, Field(ge=1, le=7 * 86400)] = None


class SignedPartModel(_Model):
    number: int
    url: str
    headers: dict[str, str]
    """Headers the PUT must carry exactly (they are signed into the URL)."""
    expires_in: int


class SignResponse(_Model):
    parts: list[SignedPartModel]


class UploadedPartModel(_Model):
    number: int
    etag: str
    size: int
    checksum: str | None = None
    last_modified: float | None = None
    """When storage received the part (seconds since the epoch), where it says."""


class PartsResponse(_Model):
    parts: list[UploadedPartModel]


class PartToComplete(_Model):
    number: Annotated[int, Field(ge=1, le=MAX_PARTS)]
    etag: Annotated[str, Field(min_length=1, max_length=130)]
    checksum: Checksum = None


class CompleteRequest(_Model):
    key: Key
    bucket: Bucket = None
    parts: Annotated[list[PartToComplete], Field(min_length=1, max_length=MAX_PARTS)]


class CompletedObject(_Model):
    key: str
    bucket: str
    size: int
    etag: str
    location: str


class OpenUploadModel(_Model):
    key: str
    bucket: str
    upload_id: str
    initiated: float
    """Seconds since the epoch."""


class UploadsResponse(_Model):
    uploads: list[OpenUploadModel]


class ObjectResponse(_Model):
    key: str
    bucket: str
    size: int
    etag: str


class ListedObject(_Model):
    key: str
    bucket: str
    size: int
    etag: str
    last_modified: float
    """Seconds since the epoch."""


class ObjectsResponse(_Model):
    objects: list[ListedObject]
    """In key order."""
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; ``None`` when this page is the last."""


class LimitsResponse(_Model):
    principal: str
    prefix: str
    """Every key you touch starts with it."""
    max_object_size: int
    """Largest object you may upload, in bytes."""
    max_open_uploads: int
    """Unfinished uploads you may have at once."""
    max_parts: int
    max_part_size: int
    max_sign_batch: int
    """Most parts signed in one call."""
    url_expiry: int
    """Seconds a presigned part URL lasts, at most."""
    rate_limit: float
    """Requests (and signed parts) per second, sustained."""
    rate_burst: int


KeyQuery = Annotated[str, Query(min_length=1, max_length=MAX_KEY_BYTES)]
BucketQuery = Annotated[str | None, Query(max_length=63)]
UploadIdPath = Annotated[str, Path(min_length=1, max_length=1024, pattern=r"^[\x21-\x7e]+$",
                                   description="As S3 gave it: printable ASCII")]


@router.post("/session", status_code=204, response_class=Response, tags=["session"])
async def open_session(request: Request,
                       principal: Annotated[Principal, Depends(bearer_principal)]
                       ) -> Response:
    """Exchange an API key for a same-origin session cookie (for browser pages).

    The cookie works until it expires (``session_ttl``), the key it was minted with is
    rotated or removed, or the cookie secret changes. It is ``Secure`` over HTTPS.
    """
    authenticator = request.app.state.authenticator
    response = Response(status_code=204)
    response.set_cookie(
        SESSION_COOKIE, authenticator.session_cookie(principal),
        max_age=authenticator.session_ttl, path="/", httponly=True, samesite="strict",
        secure=_secure(request))
    return response


@router.delete("/session", status_code=204, response_class=Response, tags=["session"])
async def close_session(request: Request, principal: CurrentPrincipal) -> Response:
    """Remove the session cookie from this browser.

    The service keeps no session state: a copy of the cookie taken before stays valid
    until it expires. Rotate the principal's key to revoke every session minted with it.
    """
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_secure(request))
    return response


def _secure(request: Request) -> bool:
    """``Secure`` by setting, or because the request came over HTTPS (``scheme`` is
    ``https`` directly or through a trusted proxy's ``X-Forwarded-Proto``)."""
    return bool(request.app.state.settings.cookie_secure) or request.url.scheme == "https"


@router.post("/uploads", tags=["uploads"])
def create_upload(body: CreateUploadRequest, service: Service,
                  principal: CurrentPrincipal) -> CreatedUpload:
    """Start a multipart upload and say how to cut the object into parts."""
    destination = service.destination(principal, key=body.key, filename=body.filename,
                                      bucket=body.bucket)
    plan = service.plan(principal, body.size, body.part_size)
    upload_id = service.create(principal, destination, size=body.size,
                               content_type=body.content_type, metadata=body.metadata,
                               checksum=body.checksum)
    return CreatedUpload(upload_id=upload_id, key=destination.key, bucket=destination.bucket,
                         part_size=plan.part_size, parts=plan.count)


@router.get("/plan", tags=["uploads"])
async def part_plan(service: Service, principal: CurrentPrincipal,
                    size: Annotated[int, Query(ge=0, description="The file's size in bytes")]
                    ) -> PartPlanResponse:
    """How a file of ``size`` bytes is cut into parts, the same plan ``POST /v1/uploads``
    answers. For clients that must know the part size before they create the upload (the
    upload page's Uppy asks for it first), so that no client plans parts of its own.
    """
    plan = service.plan(principal, size, None)
    return PartPlanResponse(size=plan.size, part_size=plan.part_size, parts=plan.count)


@router.post("/uploads/{upload_id}/sign", tags=["uploads"])
async def sign_parts(request: Request, upload_id: UploadIdPath, body: SignRequest,
                     service: Service, principal: UnchargedPrincipal) -> SignResponse:
    """Presign PUT URLs for many parts at once; a part's size and MD5 are signed in.

    The call and each part count against the caller's rate limit.
    """
    destination = service.destination(principal, key=body.key, bucket=body.bucket)
    parts = [PartToSign(p.number, p.size, p.md5, p.checksum) for p in body.parts]
    charge(request, principal, 1 + len(parts))
    signed = await service.sign_in_turn(principal, destination, upload_id, parts,
                                        expires_in=body.expires_in)
    return SignResponse(parts=[
        SignedPartModel(number=s.number, url=s.url, headers=dict(s.headers),
                        expires_in=s.expires_in) for s in signed])


@router.get("/uploads/{upload_id}/parts", tags=["uploads"])
def list_parts(upload_id: UploadIdPath, key: KeyQuery, service: Service,
               principal: CurrentPrincipal, bucket: BucketQuery = None) -> PartsResponse:
    """Every part S3 holds for the upload."""
    destination = service.destination(principal, key=key, bucket=bucket)
    parts = service.list_parts(destination, upload_id)
    return PartsResponse(parts=[
        UploadedPartModel(number=p.number, etag=p.etag, size=p.size, checksum=p.checksum,
                          last_modified=p.last_modified)
        for p in parts])


@router.post("/uploads/{upload_id}/complete", tags=["uploads"])
def complete_upload(upload_id: UploadIdPath, body: CompleteRequest, service: Service,
                    principal: CurrentPrincipal) -> CompletedObject:
    """Assemble the object. Repeating a completion that succeeded answers the same."""
    destination = service.destination(principal, key=body.key, bucket=body.bucket)
    parts = [UploadedPart(p.number, p.etag, 0, p.checksum) for p in body.parts]
    info = service.complete(principal, destination, upload_id, parts)
    return CompletedObject(key=destination.key, bucket=destination.bucket, size=info.size,
                           etag=info.etag, location=service.location(destination))


@router.delete("/uploads/{upload_id}", status_code=204, response_class=Response,
               tags=["uploads"])
def abort_upload(upload_id: UploadIdPath, key: KeyQuery, service: Service,
                 principal: CurrentPrincipal, bucket: BucketQuery = None) -> Response:
    """Abort the upload; S3 frees its parts."""
    destination = service.destination(principal, key=key, bucket=bucket)
    service.abort(destination, upload_id)
    return Response(status_code=204)


@router.get("/uploads", tags=["uploads"])
def list_uploads(service: Service, principal: CurrentPrincipal,
                 prefix: Annotated[str | None, Query(max_length=MAX_KEY_BYTES)] = None,
                 bucket: BucketQuery = None) -> UploadsResponse:
    """The caller's open uploads (under its prefix, or a narrower ``prefix``), oldest first."""
    service.check_bucket(bucket)
    uploads = service.list_uploads(principal, prefix)
    return UploadsResponse(uploads=[
        OpenUploadModel(key=u.destination.key, bucket=u.destination.bucket,
                        upload_id=u.upload_id, initiated=u.initiated) for u in uploads])


def _listing_cost(request: Request) -> int:
    """What ``GET /v1/objects`` costs, read from its query before it is validated: one
    object costs one request, a page one plus one per 100 keys of its ``limit`` (a limit
    that is no number costs the default page; the route then refuses it)."""
    query = request.query_params
    if "key" in query:
        return 1
    try:
        limit = int(query.get("limit", DEFAULT_LISTING))
    except ValueError:
        limit = DEFAULT_LISTING
    return listing_cost(min(max(limit, 1), MAX_PAGE))


async def _listing_principal(request: Request, principal: UnchargedPrincipal) -> Principal:
    """The caller of ``GET /v1/objects``, charged for the listing on the event loop, so a
    listing over the rate limit is refused without waiting for a worker thread."""
    charge(request, principal, _listing_cost(request))
    return principal


@router.get("/objects", tags=["objects"])
def objects(request: Request, service: Service,
            principal: Annotated[Principal, Depends(_listing_principal)],
            key: Annotated[str | None, Query(min_length=1, max_length=MAX_KEY_BYTES,
                                             description="One object: its size and ETag")
                           ] = None,
            prefix: Annotated[str | None, Query(
                max_length=MAX_KEY_BYTES,
                description="List under this prefix (inside yours); default: yours")] = None,
            limit: Annotated[int | None, Query(
                ge=1, le=MAX_PAGE, description=f"Most objects in the page (default "
                f"{DEFAULT_LISTING}, at most {MAX_PAGE})")] = None,
            cursor: Annotated[str | None, Query(
                min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_-]+$",
                description="`next_cursor` of the previous page")] = None,
            bucket: BucketQuery = None) -> ObjectResponse | ObjectsResponse:
    """With ``key``: the size and ETag of that completed object. Without: the caller's
    completed objects (under its prefix, or a narrower ``prefix``) in key order, at most
    ``limit`` per page; ``next_cursor`` asks for the next page.

    A page is one read of at most ``limit`` keys from S3. It costs one request of the
    rate limit, and one more per 100 keys of ``limit``.
    """
    if key is None:
        page = DEFAULT_LISTING if limit is None else limit
        service.check_bucket(bucket)
        found, next_cursor = service.list_objects(principal, prefix, limit=page,
                                                  cursor=cursor)
        return ObjectsResponse(next_cursor=next_cursor, objects=[
            ListedObject(key=o.destination.key, bucket=o.destination.bucket, size=o.size,
                        etag=o.etag, last_modified=o.last_modified) for o in found])
    if prefix is not None or limit is not None or cursor is not None:
        raise ServiceError(422, "invalid-request", "give either key (one object) or "
                           "prefix, limit and cursor (a listing), not both")
    destination = service.destination(principal, key=key, bucket=bucket)
    info = service.head(destination)
    if info is None:
        raise ServiceError(404, "object-not-found", f"there is no object {destination.key!r}")
    return ObjectResponse(key=destination.key, bucket=destination.bucket, size=info.size,
                          etag=info.etag)


@router.get("/limits", tags=["session"])
async def limits(request: Request, principal: CurrentPrincipal) -> LimitsResponse:
    """What the caller may do: largest object, open uploads at once, request rate.

    Pages use it to refuse a file that is too large before sending any of it.
    """
    settings = request.app.state.settings
    return LimitsResponse(
        principal=principal.name, prefix=principal.prefix,
        max_object_size=min(principal.max_object_size, MAX_OBJECT_SIZE),
        max_open_uploads=settings.max_open_uploads, max_parts=MAX_PARTS,
        max_part_size=MAX_PART_SIZE, max_sign_batch=settings.max_sign_batch,
        url_expiry=settings.url_expiry, rate_limit=settings.rate_limit,
        rate_burst=settings.rate_burst)
