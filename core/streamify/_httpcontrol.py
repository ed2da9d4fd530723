"""``HttpControlPlane``: the control plane for untrusted clients, through the API service.

The client holds an API key, never storage credentials. Every call goes to the service's
native ``/v1`` routes over one pooled urllib3 client; the service answers errors as RFC 9457
problem details, translated here into the core's errors. Part bytes still go straight to
S3 through the presigned URLs the service hands out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from ._control import ListedObject, ObjectInfo, OpenUpload, PartToSign, SignedPart, UploadedPart
from ._destination import Destination
from ._errors import (
    AccessDeniedError,
    ConfigError,
    DestinationError,
    EndpointError,
    StreamifyError,
    UploadGoneError,
)

__all__ = ["HttpControlPlane", "ListedObject"]

_DESTINATION_PROBLEMS = {"invalid-key", "wrong-bucket"}
_SIZE_PROBLEMS = {"object-too-large", "invalid-part", "invalid-request", "invalid-metadata"}
# Every route but "start an upload" may be repeated safely, POSTs included.
_IDEMPOTENT = frozenset({"GET", "POST", "DELETE"})


class HttpControlPlane:
    """Drives uploads through a Streamify API service at ``url`` with the API key ``token``.

    Constructing it does no I/O. Transient failures (connection refused or reset, 502,
    503, 504) are retried a few times with backoff; starting an upload is retried only
    when the request surely never arrived, so no duplicate upload is left behind.
    """

    sign_linger = 0.02
    """Concurrent workers' sign requests within 20 ms go to the service as one call."""

    def __init__(self, url: str, *, token: str, timeout: float = 60.0, pool_size: int = 16,
                 retries: int = 3) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"API URL {url!r} must start with http:// or https://")
        self._base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "Content-Type": "application/json"}
        self._retries = retries
        self._http = urllib3.PoolManager(
            maxsize=pool_size, block=False,
            timeout=urllib3.Timeout(connect=10.0, read=timeout))

    def __repr__(self) -> str:
        return f"HttpControlPlane({self._base!r})"

    @property
    def endpoint(self) -> str:
        """The API base URL (resume states are keyed by it)."""
        return self._base

    @property
    def api_url(self) -> str:
        """The API base URL, recorded in resume states so that ``streamify resume`` and
        ``status`` find the service again without ``--api``."""
        return self._base

    # ------------------------------------------------------------------ HTTP
    def _retry(self, idempotent: bool) -> urllib3.Retry:
        return urllib3.Retry(
            total=self._retries, connect=self._retries,
            read=self._retries if idempotent else 0,
            # A 429 (rate limit) refused the request before it did anything, so even
            # starting an upload is repeated, after the service's Retry-After.
            status=self._retries, other=0, redirect=0,
            status_forcelist=(429, 502, 503, 504) if idempotent else (429,),
            allowed_methods=_IDEMPOTENT,
            backoff_factor=0.25, respect_retry_after_header=True, raise_on_status=False)

    def _request(self, method: str, path: str, doing: str, destination: Destination, *,
                 query: Mapping[str, str] | None = None, body: object = None,
                 idempotent: bool = True) -> urllib3.BaseHTTPResponse:
        url = self._base + path + (f"?{urlencode(query)}" if query else "")
        try:
            return self._http.request(
                method, url, headers=self._headers, retries=self._retry(idempotent),
                body=None if body is None else json.dumps(body).encode())
        except urllib3.exceptions.HTTPError as exc:
            raise EndpointError(f"{doing} {destination}: cannot reach the API service at "
                                f"{self._base} ({type(exc).__name__}); check --api and the "
                                "network, then rerun to resume") from exc

    def _call(self, method: str, path: str, doing: str, destination: Destination, *,
              query: Mapping[str, str] | None = None, body: object = None,
              idempotent: bool = True) -> Any:
        response = self._request(method, path, doing, destination, query=query, body=body,
                                 idempotent=idempotent)
        if response.status >= 300:
            raise self._error(response, doing, destination)
        if response.status == 204 or not response.data:
            return None
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise EndpointError(f"{doing} {destination}: {self._base} did not answer JSON; "
                                "is --api the Streamify API service?") from exc

    def _error(self, response: urllib3.BaseHTTPResponse, doing: str,
               destination: Destination) -> StreamifyError:
        kind, detail = _problem(response)
        where = f"{doing} {destination}"
        status = response.status
        if status in (401, 403):
            return AccessDeniedError(f"{where}: the API service refused ({detail}); check the "
                                     "token and that the key lies inside your prefix")
        if status == 404 and kind == "upload-gone":
            return UploadGoneError(f"{where}: the multipart upload no longer exists "
                                   "(aborted, expired or completed)")
        if kind in _DESTINATION_PROBLEMS:
            return DestinationError(f"{where}: {detail}")
        if kind in _SIZE_PROBLEMS or status == 413:
            return ConfigError(f"{where}: the API service refused the request: {detail}")
        if status in (429, 502, 503, 504):
            return EndpointError(f"{where}: the API service or its storage is busy or unavailable "
                                 f"({status}: {detail}); rerun to resume")
        return StreamifyError(f"{where}: the API service answered {status}: {detail}")

    # ------------------------------------------------------------------ ControlPlane
    def create_upload(self, destination: Destination, *, content_type: str,
                      metadata: Mapping[str, str], checksum: str,
                      size: int | None = None) -> str:
        if size is None:
            raise ConfigError(f"starting upload to {destination}: the API service needs the "
                              "object size up front")
        answer = self._call("POST", "/v1/uploads", "starting upload to", destination,
                            idempotent=False, body={
                                "key": destination.key, "bucket": destination.bucket,
                                "size": size, "content_type": content_type,
                                "metadata": dict(metadata), "checksum": checksum})
        return str(answer["upload_id"])

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        answer = self._call(
            "POST", f"/v1/uploads/{quote(upload_id, safe='')}/sign", "signing parts of",
            destination, body={
                "key": destination.key, "bucket": destination.bucket, "expires_in": expires_in,
                "parts": [{"number": p.number, "size": p.size, "md5": p.md5,
                           "checksum": p.checksum} for p in parts]})
        signed = {int(item["number"]): SignedPart(
            int(item["number"]), str(item["url"]), dict(item.get("headers") or {}),
            int(item.get("expires_in", expires_in))) for item in answer["parts"]}
        try:
            return [signed[p.number] for p in parts]
        except KeyError as exc:
            raise StreamifyError(f"signing parts of {destination}: the API service did not "
                                 f"sign part {exc.args[0]}") from exc

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        answer = self._call("GET", f"/v1/uploads/{quote(upload_id, safe='')}/parts",
                            "listing parts of", destination, query=_where(destination))
        return [UploadedPart(int(p["number"]), str(p["etag"]), int(p["size"]), p.get("checksum"))
                for p in answer["parts"]]

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        answer = self._call("GET", "/v1/uploads", "listing open uploads in", destination,
                            query={"prefix": destination.key, "bucket": destination.bucket})
        uploads = [OpenUpload(Destination(str(u["bucket"]), str(u["key"])), str(u["upload_id"]),
                              float(u["initiated"])) for u in answer["uploads"]]
        return sorted(uploads, key=lambda u: u.initiated)

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        answer = self._call(
            "POST", f"/v1/uploads/{quote(upload_id, safe='')}/complete", "completing upload to",
            destination, body={
                "key": destination.key, "bucket": destination.bucket,
                "parts": [{"number": p.number, "etag": p.etag, "checksum": p.checksum}
                          for p in parts]})
        return ObjectInfo(size=int(answer["size"]), etag=str(answer["etag"]))

    def abort(self, destination: Destination, upload_id: str) -> None:
        self._call("DELETE", f"/v1/uploads/{quote(upload_id, safe='')}", "aborting upload to",
                   destination, query=_where(destination))

    def head(self, destination: Destination) -> ObjectInfo | None:
        response = self._request("GET", "/v1/objects", "reading", destination,
                                 query=_where(destination))
        if response.status == 404 and _problem(response)[0] == "object-not-found":
            return None
        if response.status >= 300:
            raise self._error(response, "reading", destination)
        answer = json.loads(response.data)
        return ObjectInfo(size=int(answer["size"]), etag=str(answer["etag"]))

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        """Every completed object whose key starts with ``prefix.key``, newest first, a
        page of ``page_size`` per call. ``AccessDeniedError`` outside the caller's prefix."""
        cursor: str | None = None
        while True:
            query = {"prefix": prefix.key, "bucket": prefix.bucket, "limit": str(page_size)}
            if cursor is not None:
                query["cursor"] = cursor
            answer = self._call("GET", "/v1/objects", "listing objects in", prefix,
                                query=query)
            for item in answer["objects"]:
                yield ListedObject(Destination(str(item["bucket"]), str(item["key"])),
                                   int(item["size"]), str(item["etag"]),
                                   float(item["last_modified"]))
            cursor = answer.get("next_cursor")
            if not cursor:
                return

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.clear()


def _where(destination: Destination) -> dict[str, str]:
    return {"key": destination.key, "bucket": destination.bucket}


def _problem(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """The problem's kind (the last part of its ``type``) and its detail."""
    try:
        problem = json.loads(response.data)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = response.data.decode(errors="replace").strip()[:200]
        return "", text or f"HTTP {response.status}"
    kind = str(problem.get("type", "")).rsplit(":", 1)[-1]
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {response.status}")
    return kind, detail
