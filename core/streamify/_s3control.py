"""``S3ControlPlane``: the control plane for trusted clients, straight to S3 with boto3."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from ._checksum import checksum_algorithm, normalize_etag
from ._control import (
    ListedObject,
    ObjectInfo,
    OpenUpload,
    PartToSign,
    SignedPart,
    UploadedPart,
)
from ._destination import Destination
from ._errors import (
    AccessDeniedError,
    DestinationError,
    EndpointError,
    StreamifyError,
    UploadGoneError,
)
from ._lean_listing import install_lean_listing, lean_listing
from ._presign import Presigner
from ._retry import DENIED_CODES, Action, classify_network, classify_status, parse_retry_after
from ._timestamps import use_fast_timestamps

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3ControlPlane", "s3_client", "translate_s3_error"]

_CHECKSUM_PARAM = {"crc32": "ChecksumCRC32", "sha1": "ChecksumSHA1", "sha256": "ChecksumSHA256",
                   "crc64nvme": "ChecksumCRC64NVME"}
# No connection was made: the request surely never arrived.
_NOT_CONNECTED = (botocore.exceptions.EndpointConnectionError,
                  botocore.exceptions.ConnectTimeoutError)
_NETWORK = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError,
            botocore.exceptions.ReadTimeoutError, botocore.exceptions.HTTPClientError)


def s3_client(*, endpoint_url: str | None = None, region: str | None = None,
              max_pool_connections: int = 16, session: boto3.Session | None = None,
              client_kwargs: Mapping[str, Any] | None = None) -> S3Client:
    """A boto3 S3 client configured for Streamify: SigV4, one attempt per call (Streamify
    retries, under the upload's budget), no CRT checksums.

    Checksums are left to Streamify (``request_checksum_calculation="when_required"``):
    botocore's default aws-chunked trailing checksums are rejected by some S3 servers.
    ``client_kwargs`` go to ``session.client`` (``verify``, ``region_name``...); a
    ``config`` among them is merged over Streamify's.
    """
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=120,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    extra = dict(client_kwargs or {})
    if "config" in extra:
        config = config.merge(extra.pop("config"))
    options: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region, **extra}
    if session is None:
        session = boto3.Session()
        use_fast_timestamps(session)
    return session.client("s3", config=config, **options)


def translate_s3_error(exc: Exception, doing: str, destination: Destination) -> StreamifyError:
    """Turn a botocore error into the Streamify error a user can act on, classified by
    ``_retry``: what is worth retrying comes back as a transient ``EndpointError``."""
    where = f"{doing} {destination.url}"
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or code or f"HTTP {status}")
        action = classify_status(status, code)
        if code == "NoSuchBucket":
            return DestinationError(f"{where}: {destination.missing_bucket()}")
        if action is Action.UPLOAD_GONE:
            return UploadGoneError(f"{where}: the multipart upload no longer exists "
                                   "(aborted or expired)")
        if code == "RequestTimeTooSkewed":
            return AccessDeniedError(f"{where}: storage refused the request because this "
                                     "machine's clock differs from its own by more than 15 "
                                     "minutes; set the clock right (NTP) and rerun")
        if action is Action.RETRY:
            retry_after = parse_retry_after(meta.get("HTTPHeaders", {}).get("retry-after"))
            return EndpointError(f"{where}: S3 is unavailable or busy ({status} {code}: "
                                 f"{message}); rerun the same command to resume",
                                 transient=True, status=status, retry_after=retry_after)
        if code in DENIED_CODES or status == 403:
            return AccessDeniedError(f"{where}: access denied ({message}); check the "
                                     "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                                     "profile) and their permissions")
        if status == 501:
            return EndpointError(f"{where}: the S3 server does not implement this request "
                                 f"({message}); check --endpoint-url points at an S3 service",
                                 status=status)
        return StreamifyError(f"{where}: S3 said {code or status}: {message}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return AccessDeniedError(f"{where}: no AWS credentials found; set "
                                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
    if isinstance(exc, botocore.exceptions.ParamValidationError) and "bucket name" in str(exc):
        return DestinationError(f"{where}: {destination.bucket!r} is not a valid bucket name: "
                                "S3 bucket names are 3 to 63 lowercase letters, digits, dots "
                                "and hyphens")
    if isinstance(exc, _NETWORK):
        if classify_network(exc) is Action.FATAL:
            return EndpointError(f"{where}: the TLS certificate of {exc} does not verify; "
                                 "check --endpoint-url, or name the right CA bundle "
                                 "(AWS_CA_BUNDLE)")
        return EndpointError(f"{where}: cannot reach S3 ({exc}); check --endpoint-url and "
                             "the network, then rerun the same command to resume",
                             transient=True, connected=not isinstance(exc, _NOT_CONNECTED))
    return StreamifyError(f"{where}: {exc}")


class S3ControlPlane:
    """Drives S3 directly: with ``client`` if given, else with a client made on first use
    from ``session`` (a ``boto3.Session`` holding the credentials: keys, a profile, an
    assumed role) or the standard AWS chain, and ``client_kwargs`` for ``session.client``.

    Constructing this does no I/O.
    """

    sign_linger = 0.0

    def __init__(self, client: S3Client | None = None, *, endpoint_url: str | None = None,
                 region: str | None = None, max_pool_connections: int = 16,
                 session: boto3.Session | None = None,
                 client_kwargs: Mapping[str, Any] | None = None) -> None:
        self._client = client
        self._endpoint_url = endpoint_url
        self._region = region
        self._pool = max_pool_connections
        self._session = session
        self._client_kwargs = dict(client_kwargs or {})
        self._lock = threading.Lock()
        # Presigning without botocore's request machinery, for a client built here and
        # addressed path-style at an explicit endpoint (decided on first use).
        self._presigner: Presigner | bool | None = None if client is None else False

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                self._client = s3_client(endpoint_url=self._endpoint_url, region=self._region,
                                         max_pool_connections=self._pool,
                                         session=self._session,
                                         client_kwargs=self._client_kwargs)
            return self._client

    @property
    def endpoint(self) -> str:
        return self._endpoint_url or self.client.meta.endpoint_url

    @property
    def tls_verify(self) -> bool | str:
        """How the client checks TLS (``client_kwargs``' ``verify``): the part bodies sent
        to presigned URLs are checked the same way."""
        verify: bool | str = self._client_kwargs.get("verify", True)
        return verify

    @property
    def principal(self) -> str:
        """Who signs the requests: ``aws:`` and the access key id ("" if none is found)."""
        credentials = self.client._get_credentials()  # type: ignore[attr-defined]
        key = getattr(credentials, "access_key", None) if credentials else None
        return f"aws:{key}" if key else ""

    @contextlib.contextmanager
    def _errors(self, doing: str, destination: Destination) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise translate_s3_error(exc, doing, destination) from exc

    def create_upload(self, destination: Destination, *, content_type: str,
                      metadata: Mapping[str, str], checksum: str,
                      size: int | None = None) -> str:
        params: dict[str, Any] = {
            "Bucket": destination.bucket, "Key": destination.key,
            "ContentType": content_type, "Metadata": dict(metadata),
        }
        if checksum != "none":
            params["ChecksumAlgorithm"] = checksum.upper()
        if checksum == "crc64nvme":
            # The object gets the CRC64NVME of all its bytes (S3 has no other kind for it).
            params["ChecksumType"] = "FULL_OBJECT"
        with self._errors("starting upload to", destination):
            return self.client.create_multipart_upload(**params)["UploadId"]

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        signed = []
        with self._errors("signing parts of", destination):
            for part in parts:
                params: dict[str, Any] = {
                    "Bucket": destination.bucket, "Key": destination.key,
                    "UploadId": upload_id, "PartNumber": part.number,
                }
                headers: dict[str, str] = {}
                _sign_body(part, params, headers)
                url = self._presign(
                    "upload_part", params, headers, expires_in,
                    {"partNumber": str(part.number), "uploadId": upload_id})
                signed.append(SignedPart(part.number, url, headers, expires_in))
        return signed

    def sign_object(self, destination: Destination, part: PartToSign, *, content_type: str,
                    metadata: Mapping[str, str], expires_in: int) -> SignedPart:
        params: dict[str, Any] = {"Bucket": destination.bucket, "Key": destination.key,
                                  "ContentType": content_type}
        # Every header below is signed into the URL: the PUT must carry each one unchanged.
        headers: dict[str, str] = {"Content-Type": content_type}
        if metadata:
            params["Metadata"] = dict(metadata)
            headers.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        _sign_body(part, params, headers)
        with self._errors("signing the upload of", destination):
            url = self._presign("put_object", params, headers, expires_in, {})
        return SignedPart(part.number, url, headers, expires_in)

    def _presign(self, operation: str, params: dict[str, Any], headers: Mapping[str, str],
                 expires_in: int, query: Mapping[str, str]) -> str:
        """The presigned URL of ``operation`` (a PUT) with ``params``: the same URL
        botocore's ``generate_presigned_url`` makes, through ``Presigner`` where it
        applies. Every header in ``headers`` is signed, and ``Content-Length``."""
        presigner = self._fast_presigner()
        credentials = self.client._request_signer._credentials  # type: ignore[attr-defined]
        if not isinstance(presigner, Presigner) or credentials is None:
            return self.client.generate_presigned_url(operation, Params=params,
                                                      ExpiresIn=expires_in)
        frozen = credentials.get_frozen_credentials()
        signed = dict(headers)
        if "ContentLength" in params:
            signed["Content-Length"] = str(params["ContentLength"])
        return presigner.put_url(params["Bucket"], params["Key"], query=query,
                                 headers=signed, access_key=frozen.access_key,
                                 secret_key=frozen.secret_key, token=frozen.token,
                                 now=datetime.now(UTC), expires_in=expires_in)

    @property
    def signs_without_io(self) -> bool:
        """Whether presigning here is computation only: this control plane's own
        ``Presigner``, with credentials that never refresh (keys, not a role whose
        refresh would call STS)."""
        credentials = self.client._request_signer._credentials  # type: ignore[attr-defined]
        return (isinstance(self._fast_presigner(), Presigner) and credentials is not None
                and not isinstance(credentials, RefreshableCredentials))

    def _fast_presigner(self) -> Presigner | bool | None:
        """A ``Presigner`` for a client this control plane built, addressed path-style
        at an explicit endpoint with SigV4; ``False`` where botocore must sign."""
        if self._presigner is None:
            client = self.client
            config: Any = client.meta.config
            simple = (self._endpoint_url is not None and client.meta.region_name
                      and config.signature_version == "s3v4"
                      and (config.s3 or {}).get("addressing_style") == "path")
            self._presigner = (Presigner(client.meta.endpoint_url, client.meta.region_name)
                               if simple else False)
        return self._presigner

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        marker = 0
        with self._errors("listing parts of", destination):
            while True:
                # Ceph radosgw answers NoSuchKey for a gone upload: `_retry` reads both
                # as the upload gone.
                page = self.client.list_parts(
                    Bucket=destination.bucket, Key=destination.key, UploadId=upload_id,
                    PartNumberMarker=marker)
                for item in page.get("Parts", []):
                    checksum = next((item[k] for k in _CHECKSUM_PARAM.values()  # type: ignore[literal-required]
                                     if k in item), None)
                    written = item.get("LastModified")
                    parts.append(UploadedPart(item["PartNumber"], normalize_etag(item["ETag"]),
                                              item["Size"], checksum,
                                              written.timestamp() if written else None))
                if not page.get("IsTruncated"):
                    return parts
                after = int(page.get("NextPartNumberMarker") or 0)
                if after <= marker:
                    # Followed, it would ask for the same page again and again.
                    raise EndpointError(
                        f"listing parts of {destination.url}: S3 answered that more parts "
                        f"follow part {marker} but named no part after it (a broken answer);"
                        " rerun the same command to resume", transient=True)
                marker = after

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        uploads: list[OpenUpload] = []
        for page in self._upload_pages(destination):
            for item in page.get("Uploads", []):
                uploads.append(OpenUpload(Destination(destination.bucket, item["Key"]),
                                          item["UploadId"], item["Initiated"].timestamp()))
        return sorted(uploads, key=lambda u: u.initiated)

    def count_uploads(self, prefix: Destination, *, at_most: int) -> int:
        """How many uploads are open under ``prefix``, counting no further than
        ``at_most`` (so a full prefix costs at most ``at_most`` keys read, not all)."""
        count = 0
        for page in self._upload_pages(prefix, page_size=min(at_most, 1000)):
            count += len(page.get("Uploads", []))
            if count >= at_most:
                break
        return min(count, at_most)

    def _upload_pages(self, prefix: Destination, *, page_size: int = 1000
                      ) -> Iterator[Mapping[str, Any]]:
        """The ListMultipartUploads pages of ``prefix``, read lean."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        pages = paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key,
                                   PaginationConfig={"PageSize": page_size})
        install_lean_listing(self.client)
        with self._errors("listing open uploads in", prefix):
            iterator = iter(pages)
            while True:
                with lean_listing():
                    page = next(iterator, None)
                if page is None:
                    return
                yield page

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        """Every completed object whose key starts with ``prefix.key`` (ListObjectsV2)."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=prefix.bucket, Prefix=prefix.key,
                                   PaginationConfig={"PageSize": page_size})
        with self._errors("listing objects in", prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    yield _listed(prefix.bucket, item)

    def list_objects_page(self, prefix: Destination, *, limit: int,
                          after: str | None = None) -> tuple[list[ListedObject], bool]:
        """Up to ``limit`` (at most 1,000) completed objects whose key starts with
        ``prefix.key`` and comes after ``after``, in key order, from one ListObjectsV2
        call; and whether more follow."""
        options: dict[str, Any] = {"Bucket": prefix.bucket, "Prefix": prefix.key,
                                   "MaxKeys": limit}
        if after is not None:
            options["StartAfter"] = after
        with self._errors("listing objects in", prefix):
            install_lean_listing(self.client)
            with lean_listing():
                page = self.client.list_objects_v2(**options)
            return ([_listed(prefix.bucket, item) for item in page.get("Contents", [])],
                    bool(page.get("IsTruncated")))

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        listed = []
        with self._errors("completing upload to", destination):
            for part in sorted(parts, key=lambda p: p.number):
                entry: dict[str, Any] = {"PartNumber": part.number, "ETag": f'"{part.etag}"'}
                if part.checksum:
                    entry[_CHECKSUM_PARAM[checksum_algorithm(part.checksum)]] = part.checksum
                listed.append(entry)
            self.client.complete_multipart_upload(
                Bucket=destination.bucket, Key=destination.key, UploadId=upload_id,
                MultipartUpload={"Parts": listed})  # type: ignore[typeddict-item]
        # Some servers (Ceph radosgw) return an empty ETag from complete: read it back,
        # with the full-object CRC64NVME where the parts carry theirs.
        full_object = any(p.checksum and checksum_algorithm(p.checksum) == "crc64nvme"
                          for p in parts)
        info = self._head(destination, with_checksum=full_object)
        if info is None:
            raise UploadGoneError(f"completing upload to {destination}: S3 accepted the "
                                  "completion but the object is not there")
        return info

    def abort(self, destination: Destination, upload_id: str) -> None:
        with self._errors("aborting upload to", destination):
            self.client.abort_multipart_upload(
                Bucket=destination.bucket, Key=destination.key, UploadId=upload_id)

    def close(self) -> None:
        """Close the client's connections; a later call makes a new client."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def head(self, destination: Destination) -> ObjectInfo | None:
        return self._head(destination, with_checksum=False)

    def _head(self, destination: Destination, *, with_checksum: bool) -> ObjectInfo | None:
        extra: dict[str, Any] = {"ChecksumMode": "ENABLED"} if with_checksum else {}
        with self._errors("reading", destination):
            try:
                head = self.client.head_object(Bucket=destination.bucket, Key=destination.key,
                                               **extra)
            except botocore.exceptions.ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404:
                    return None
                raise
        return ObjectInfo(size=int(head["ContentLength"]), etag=normalize_etag(head["ETag"]),
                          checksum=head.get("ChecksumCRC64NVME") if with_checksum else None)


def _sign_body(part: PartToSign, params: dict[str, Any], headers: dict[str, str]) -> None:
    """Sign the body's size, Content-MD5 and additional checksum into a PUT's URL.

    The size is signed so that storage refuses a body of any other size; botocore signs
    the other two as headers, so the PUT must carry them unchanged (added to ``headers``).
    """
    if part.size is not None:
        params["ContentLength"] = part.size
    if part.md5:
        params["ContentMD5"] = part.md5
        headers["Content-MD5"] = part.md5
    if part.checksum:
        algorithm = checksum_algorithm(part.checksum)
        params[_CHECKSUM_PARAM[algorithm]] = part.checksum
        headers[f"x-amz-checksum-{algorithm}"] = part.checksum


def _listed(bucket: str, item: Any) -> ListedObject:
    """A ``Contents`` entry of a ListObjectsV2 answer."""
    return ListedObject(Destination(bucket, item["Key"]), int(item["Size"]),
                        normalize_etag(item["ETag"]), item["LastModified"].timestamp())
