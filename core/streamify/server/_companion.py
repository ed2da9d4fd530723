"""The Uppy Companion S3 routes (``/s3/...``), same paths, shapes and statuses as Companion 6.

The real ``@uppy/aws-s3`` client in Companion mode works against these unchanged. It sends
no auth header, only the same-origin session cookie; programs may send a bearer key.
Errors answer ``{"error": message}`` as Companion does (see ``_problems``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from .._control import PartToSign, UploadedPart
from .._plan import MAX_PARTS
from ._deps import CurrentPrincipal, Service, UnchargedPrincipal, charge
from ._keys import MAX_KEY_BYTES
from ._problems import CompanionError, ServiceError

__all__ = ["router"]

router = APIRouter(prefix="/s3", tags=["companion"], responses={
    status: {"model": CompanionError}
    for status in (400, 401, 403, 404, 408, 409, 413, 429, 502)})

KeyQuery = Annotated[str, Query(min_length=1, max_length=MAX_KEY_BYTES,
                                description="The object key from `POST /s3/multipart`")]
UploadIdPath = Annotated[str, Path(alias="uploadId", min_length=1, max_length=1024,
                                   pattern=r"^[\x21-\x7e]+$")]


class CreateMultipart(BaseModel):
    filename: Annotated[str, Field(max_length=MAX_KEY_BYTES)]
    type: Annotated[str, Field(max_length=255, pattern=r"^[\x20-\x7e]*$")] = ""
    metadata: dict[str, Any] = {}


class CreatedMultipart(BaseModel):
    key: str
    uploadId: str
    bucket: str


class CompanionPart(BaseModel):
    PartNumber: int
    ETag: str
    Size: int


class SignedUrl(BaseModel):
    url: str
    expires: int


class BatchSigned(BaseModel):
    presignedUrls: dict[str, str]


class PartToComplete(BaseModel):
    PartNumber: Annotated[int, Field(ge=1, le=MAX_PARTS)]
    ETag: Annotated[str, Field(min_length=1, max_length=130)]


class CompleteMultipart(BaseModel):
    parts: Annotated[list[PartToComplete], Field(min_length=1, max_length=MAX_PARTS)]


class CompletedMultipart(BaseModel):
    location: str
    key: str
    bucket: str


class UploadParameters(BaseModel):
    method: str
    url: str
    fields: dict[str, str]
    headers: dict[str, str]
    expires: int


def _content_type(declared: str) -> str:
    return declared or "application/octet-stream"


def _part_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARTS:
        raise ServiceError(400, "invalid-part",
                           f"s3: the part number must be a number between 1 and {MAX_PARTS}.")
    return number


def _declared_size(metadata: dict[str, Any]) -> int:
    size = metadata.get("size")
    if isinstance(size, str) and size.isascii() and size.isdigit() and len(size) <= 16:
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ServiceError(400, "size-not-declared", "s3: declare the file's size in bytes "
                           "as metadata.size (the upload page does)")
    return size


@router.post("/multipart")
def create_multipart(body: CreateMultipart, service: Service,
                     principal: CurrentPrincipal) -> CreatedMultipart:
    """Start a multipart upload for a file of ``metadata.size`` bytes; its key is under the
    caller's prefix. A size over the caller's limit is refused here, and every part is
    later signed with its size in the plan (``GET /v1/plan``), so storage refuses a part
    of any other length."""
    destination = service.destination(principal, filename=body.filename)
    upload_id = service.create_declared(principal, destination,
                                        size=_declared_size(body.metadata),
                                        content_type=_content_type(body.type),
                                        metadata=body.metadata)
    return CreatedMultipart(key=destination.key, uploadId=upload_id, bucket=destination.bucket)


@router.get("/multipart/{uploadId}")
def list_parts(upload_id: UploadIdPath, key: KeyQuery, service: Service,
               principal: CurrentPrincipal) -> list[CompanionPart]:
    """The parts uploaded so far, as a bare array."""
    destination = service.destination(principal, key=key)
    return [CompanionPart(PartNumber=p.number, ETag=f'"{p.etag}"', Size=p.size)
            for p in service.list_parts(destination, upload_id)]


# Registered before the single-part route, which would otherwise match "batch".
@router.get("/multipart/{uploadId}/batch")
async def sign_batch(request: Request, upload_id: UploadIdPath, key: KeyQuery,
                     service: Service, principal: UnchargedPrincipal,
               part_numbers: Annotated[str, Query(alias="partNumbers", max_length=6000,
                                                  pattern=r"^[0-9,]+$")],
               ) -> BatchSigned:
    """Presigned URLs for several parts: ``partNumbers=1,2,3``."""
    destination = service.destination(principal, key=key)
    texts = part_numbers.split(",")
    numbers = [_part_number(text) for text in texts]
    charge(request, principal, 1 + len(numbers))
    signed = await service.sign_in_turn(principal, destination, upload_id,
                                        [PartToSign(number) for number in numbers],
                                        declared_only=True)
    return BatchSigned(presignedUrls={text: s.url for text, s in zip(texts, signed,
                                                                     strict=True)})


@router.get("/multipart/{uploadId}/{partNumber}")
async def sign_part(request: Request, upload_id: UploadIdPath,
                    part_number: Annotated[str, Path(alias="partNumber")], key: KeyQuery,
                    service: Service, principal: UnchargedPrincipal) -> SignedUrl:
    """A presigned URL for one part."""
    destination = service.destination(principal, key=key)
    number = _part_number(part_number)
    charge(request, principal, 2)
    [signed] = await service.sign_in_turn(principal, destination, upload_id,
                                          [PartToSign(number)], declared_only=True)
    return SignedUrl(url=signed.url, expires=signed.expires_in)


@router.post("/multipart/{uploadId}/complete")
def complete_multipart(upload_id: UploadIdPath, key: KeyQuery, body: CompleteMultipart,
                       service: Service, principal: CurrentPrincipal) -> CompletedMultipart:
    """Assemble the object from the listed parts."""
    destination = service.destination(principal, key=key)
    parts = [UploadedPart(p.PartNumber, p.ETag, 0) for p in body.parts]
    service.complete(principal, destination, upload_id, parts)
    return CompletedMultipart(location=service.location(destination), key=destination.key,
                              bucket=destination.bucket)


@router.delete("/multipart/{uploadId}")
def abort_multipart(upload_id: UploadIdPath, key: KeyQuery, service: Service,
                    principal: CurrentPrincipal) -> dict[str, str]:
    """Abort the upload; answers ``{}``."""
    destination = service.destination(principal, key=key)
    service.abort(destination, upload_id)
    return {}


# Uppy sends metadata as ``metadata[name]=value``: declared so that the OpenAPI document
# (and the fuzzing built on it) knows the shape.
_METADATA_QUERY: dict[str, Any] = {"parameters": [{
    "name": "metadata", "in": "query", "required": False, "style": "deepObject",
    "explode": True, "description": "Object metadata: `metadata[name]=value`",
    "schema": {"type": "object", "additionalProperties": {"type": "string"}}}]}


@router.get("/params", openapi_extra=_METADATA_QUERY)
def upload_parameters(request: Request, service: Service, principal: CurrentPrincipal,
                      filename: Annotated[str, Query(max_length=MAX_KEY_BYTES)],
                      content_type: Annotated[str, Query(alias="type", max_length=255,
                                                         pattern=r"^[\x20-\x7e]*$")] = "",
                      ) -> UploadParameters:
    """A presigned POST (an S3 form upload) for a small file sent in one request.

    Uppy's ``@uppy/aws-s3`` sends the ``fields`` and then the file as a form. The signed
    policy binds the key, type and metadata, and limits the body to the caller's
    ``max_object_size``: storage refuses anything larger. Metadata comes as
    ``metadata[name]=value`` query parameters, as Uppy sends it.
    """
    destination = service.destination(principal, filename=filename)
    metadata = {name[len("metadata["):-1]: value
                for name, value in request.query_params.multi_items()
                if name.startswith("metadata[") and name.endswith("]")}
    url, fields = service.presign_post(principal, destination,
                                       content_type=_content_type(content_type),
                                       metadata=metadata)
    return UploadParameters(method="POST", url=url, fields=fields, headers={},
                            expires=service.settings.url_expiry)
