"""FastAPI dependencies: the app's ``UploadService`` and the authenticated ``Principal``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from ._auth import SESSION_COOKIE, Authenticator, Principal
from ._problems import ServiceError
from ._service import UploadService

__all__ = ["CurrentPrincipal", "Service", "bearer_principal", "current_principal"]

# Declared for the OpenAPI document; the checks below read the request themselves so
# that a malformed header is refused rather than ignored.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="The browser session set by `POST /v1/session`")


def _service(request: Request) -> UploadService:
    service: UploadService = request.app.state.service
    return service


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def _from_header(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    principal = (_authenticator(request).from_token(token.strip())
                 if scheme.lower() == "bearer" and token.strip() else None)
    if principal is None:
        raise ServiceError(401, "unauthorized", "the API key is not valid")
    return principal


def _remember(request: Request, principal: Principal) -> Principal:
    # The access log names the principal, never the credential.
    request.state.principal = principal.name
    return principal


def bearer_principal(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` only."""
    principal = _from_header(request)
    if principal is None:
        raise ServiceError(401, "unauthorized", "send an API key as `Authorization: Bearer`")
    return _remember(request, principal)


def current_principal(
    request: Request,
    _declared_bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _declared_cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """The caller, from a bearer key or else the session cookie."""
    principal = _from_header(request)
    if principal is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        principal = _authenticator(request).from_cookie(cookie) if cookie else None
    if principal is None:
        raise ServiceError(401, "unauthorized", "send an API key as `Authorization: Bearer` "
                           "or sign in with POST /v1/session")
    return _remember(request, principal)


Service = Annotated[UploadService, Depends(_service)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
