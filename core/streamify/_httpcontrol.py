"""``HttpControlPlane``: the control plane for untrusted clients, through the API service.

The client holds an API key, never storage credentials. Every call goes to the service's
native ``/v1`` routes over one pooled urllib3 client; the service answers errors as RFC 9457
problem details, translated here into the core's errors. Part bytes still go straight to
S3 through the presigned URLs the service hands out.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from ._retry import Action, classify_network, classify_status, parse_retry_after

__all__ = ["HttpControlPlane", "ListedObject"]

_DESTINATION_PROBLEMS = {"invalid-key", "wrong-bucket"}
_SIZE_PROBLEMS = {"object-too-large", "invalid-part", "invalid-request", "invalid-metadata"}


class HttpControlPlane:
    """Drives uploads through a Streamify API service at ``url`` with the API key ``token``.

    Constructing it does no I/O. Each call is one attempt: a failure comes back classified
    (a transient ``EndpointError`` for a refused connection, a timeout, 429 or 5xx) and the
    upload retries it under its own budget (``UploadConfig``), like its part PUTs.
    """

    sign_linger = 0.02
    """Concurrent workers' sign requests within 20 ms go to the service as one call."""

    def __init__(self, url: str, *, token: str, timeout: float = 60.0, pool_size: int = 16
                 ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"API URL {url!r} must start with http:// or https://")
        self._base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "Content-Type": "application/json"}
        self._principal = "api:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        self._http = urllib3.PoolManager(
            maxsize=pool_size, block=False, retries=False,
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

    @property
    def principal(self) -> str:
        """Who calls: ``api:`` and a short hash of the API key (never the key itself)."""
        return self._principal

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, doing: str, destination: Destination, *,
                 query: Mapping[str, str] | None = None, body: object = None,
                 ) -> urllib3.BaseHTTPResponse:
        url = self._base + path + (f"?{urlencode(query)}" if query else "")
        try:
            return self._http.request(
                method, url, headers=self._headers,
                body=None if body is None else json.dumps(body).encode())
        except urllib3.exceptions.HTTPError as exc:
            where = f"{doing} {destination}"
            if classify_network(exc) is Action.FATAL:
                raise EndpointError(f"{where}: the TLS certificate of the API service at "
                                    f"{self._base} does not verify; check api_url (--api) "
                                    "and the certificate") from exc
            connected = not isinstance(exc, urllib3.exceptions.NewConnectionError |
                                       urllib3.exceptions.ConnectTimeoutError |
                                       urllib3.exceptions.NameResolutionError)
            raise EndpointError(f"{where}: cannot reach the API service at {self._base} "
                                f"({type(exc).__name__}); check api_url (--api) and the "
                                "network, then rerun to resume",
                                transient=True, connected=connected) from exc

    def _call(self, method: str, path: str, doing: str, destination: Destination, *,
              query: Mapping[str, str] | None = None, body: object = None) -> dict[str, Any]:
        """The JSON object the service answered; an error answer raised as an error."""
        response = self._request(method, path, doing, destination, query=query, body=body)
        if response.status >= 300:
            raise self._error(response, doing, destination)
        return self._object(response, doing, destination)

    def _object(self, response: urllib3.BaseHTTPResponse, doing: str,
                destination: Destination) -> dict[str, Any]:
        try:
            answer = json.loads(response.data)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise EndpointError(f"{doing} {destination}: {self._base} did not answer a JSON "
                                f"object (HTTP {response.status}); is api_url (--api) the "
                                "Streamify API service?", status=response.status)
        return answer

    def _error(self, response: urllib3.BaseHTTPResponse, doing: str,
               destination: Destination) -> StreamifyError:
        kind, detail = _problem(response)
        where = f"{doing} {destination}"
        status = response.status
        action = classify_status(status, kind)
        if action is Action.UPLOAD_GONE and kind == "upload-gone":
            return UploadGoneError(f"{where}: the multipart upload no longer exists "
                                   "(aborted, expired or completed)")
        if status in (401, 403):
            return AccessDeniedError(f"{where}: the API service refused ({detail}); check the "
                                     "token and that the key lies inside your prefix")
        if kind in _DESTINATION_PROBLEMS:
            return DestinationError(f"{where}: {detail}")
        if kind in _SIZE_PROBLEMS or status == 413:
            return ConfigError(f"{where}: the API service refused the request: {detail}")
        if action is Action.RETRY:
            return EndpointError(
                f"{where}: the API service or its storage is busy or unavailable "
                f"({status}: {detail}); rerun to resume", transient=True, status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return StreamifyError(f"{where}: the API service answered {status}: {detail}")

    @contextlib.contextmanager
    def _reading(self, doing: str, destination: Destination) -> Iterator[None]:
        """Turn an answer without the fields the protocol promises into a clear error."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EndpointError(f"{doing} {destination}: the API service at {self._base} "
                                f"answered without the expected fields ({type(exc).__name__}: "
                                f"{exc}); is api_url (--api) the Streamify API service?"
                                ) from exc

    # ------------------------------------------------------------------ ControlPlane
    def create_upload(self, destination: Destination, *, content_type: str,
                      metadata: Mapping[str, str], checksum: str,
                      size: int | None = None) -> str:
        if size is None:
            raise ConfigError(f"starting upload to {destination}: the API service needs the "
                              "object size up front")
        doing = "starting upload to"
        answer = self._call("POST", "/v1/uploads", doing, destination, body={
            "key": destination.key, "bucket": destination.bucket, "size": size,
            "content_type": content_type, "metadata": dict(metadata), "checksum": checksum})
        with self._reading(doing, destination):
            return _text(answer["upload_id"])

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        doing = "signing parts of"
        answer = self._call(
            "POST", f"/v1/uploads/{quote(upload_id, safe='')}/sign", doing, destination, body={
                "key": destination.key, "bucket": destination.bucket, "expires_in": expires_in,
                "parts": [{"number": p.number, "size": p.size, "md5": p.md5,
                           "checksum": p.checksum} for p in parts]})
        with self._reading(doing, destination):
            signed = {int(item["number"]): SignedPart(
                int(item["number"]), _text(item["url"]),
                {_text(k): _text(v) for k, v in (item.get("headers") or {}).items()},
                int(item.get("expires_in", expires_in))) for item in answer["parts"]}
        try:
            return [signed[p.number] for p in parts]
        except KeyError as exc:
            raise EndpointError(f"{doing} {destination}: the API service did not sign part "
                                f"{exc.args[0]}") from exc

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        doing = "listing parts of"
        answer = self._call("GET", f"/v1/uploads/{quote(upload_id, safe='')}/parts", doing,
                            destination, query=_where(destination))
        with self._reading(doing, destination):
            return [UploadedPart(int(p["number"]), _text(p["etag"]), int(p["size"]),
                                 None if p.get("checksum") is None else _text(p["checksum"]))
                    for p in answer["parts"]]

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        doing = "listing open uploads in"
        answer = self._call("GET", "/v1/uploads", doing, destination,
                            query={"prefix": destination.key, "bucket": destination.bucket})
        with self._reading(doing, destination):
            uploads = [OpenUpload(Destination(_text(u["bucket"]), _text(u["key"])),
                                  _text(u["upload_id"]), float(u["initiated"]))
                       for u in answer["uploads"]]
        return sorted(uploads, key=lambda u: u.initiated)

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        doing = "completing upload to"
        answer = self._call(
            "POST", f"/v1/uploads/{quote(upload_id, safe='')}/complete", doing, destination,
            body={"key": destination.key, "bucket": destination.bucket,
                  "parts": [{"number": p.number, "etag": p.etag, "checksum": p.checksum}
                            for p in parts]})
        with self._reading(doing, destination):
            return ObjectInfo(size=int(answer["size"]), etag=_text(answer["etag"]))

    def abort(self, destination: Destination, upload_id: str) -> None:
        response = self._request("DELETE", f"/v1/uploads/{quote(upload_id, safe='')}",
                                 "aborting upload to", destination, query=_where(destination))
        if response.status >= 300:
            raise self._error(response, "aborting upload to", destination)

    def head(self, destination: Destination) -> ObjectInfo | None:
        response = self._request("GET", "/v1/objects", "reading", destination,
                                 query=_where(destination))
        if response.status == 404 and _problem(response)[0] == "object-not-found":
            return None
        if response.status >= 300:
            raise self._error(response, "reading", destination)
        answer = self._object(response, "reading", destination)
        with self._reading("reading", destination):
            return ObjectInfo(size=int(answer["size"]), etag=_text(answer["etag"]))

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        """Every completed object whose key starts with ``prefix.key``, in key order, a
        page of ``page_size`` per call. ``AccessDeniedError`` outside the caller's prefix."""
        cursor: str | None = None
        doing = "listing objects in"
        while True:
            query = {"prefix": prefix.key, "bucket": prefix.bucket, "limit": str(page_size)}
            if cursor is not None:
                query["cursor"] = cursor
            answer = self._call("GET", "/v1/objects", doing, prefix, query=query)
            with self._reading(doing, prefix):
                page = [ListedObject(Destination(_text(item["bucket"]), _text(item["key"])),
                                     int(item["size"]), _text(item["etag"]),
                                     float(item["last_modified"]))
                        for item in answer["objects"]]
                cursor = answer.get("next_cursor")
                if cursor is not None:
                    cursor = _text(cursor)
            yield from page
            if not cursor:
                return

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.clear()


def _text(value: object) -> str:
    """A string field of an answer (a number or null there is a broken answer)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _where(destination: Destination) -> dict[str, str]:
    return {"key": destination.key, "bucket": destination.bucket}


def _problem(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """The problem's kind (the last part of its ``type``) and its detail."""
    try:
        problem = json.loads(response.data)
    except (ValueError, RecursionError):
        problem = None
    if not isinstance(problem, dict):
        text = response.data.decode(errors="replace").strip()[:200]
        return "", text or f"HTTP {response.status}"
    kind = str(problem.get("type", "")).rsplit(":", 1)[-1]
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {response.status}")
    return kind, detail
