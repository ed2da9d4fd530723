"""FastAPI dependencies: the app's ``UploadService`` and the authenticated ``Principal``.

They are ``async`` (cheap, on the event loop), so authenticating never waits for a thread
while sign calls keep the worker threads busy. Every authenticated request counts as one
of its principal's requests in flight until it is answered, and is charged to its
principal's rate limit: here, or by the route (sign calls, with their parts; listings, by
the keys they may read), once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from ._auth import SESSION_COOKIE, Authenticator, Principal
from ._limits import RateLimit, RequestsInFlight
from ._problems import ServiceError
from ._service import UploadService

__all__ = [
    "CurrentPrincipal",
    "Service",
    "UnchargedPrincipal",
    "bearer_principal",
    "charge",
    "current_principal",
    "uncharged_principal",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_SITE = frozenset({"same-origin", "none"})

# Declared for the OpenAPI document; the checks below read the request themselves so
# that a malformed header is refused rather than ignored.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="The browser session set by `POST /v1/session`")


async def _service(request: Request) -> UploadService:
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


def charge(request: Request, principal: Principal, cost: int = 1) -> None:
    """Take ``cost`` from ``principal``'s rate limit, or refuse with 429 and
    ``Retry-After``."""
    limiter: RateLimit = request.app.state.rate_limiter
    # A sign call over the batch cap is refused anyway: it costs no more than the cap.
    wait = limiter.take(principal.name,
                        min(cost, 1 + request.app.state.settings.max_sign_batch))
    if wait:
        raise ServiceError(429, "rate-limited", f"{principal.name} is over its rate limit "
                           f"({limiter.rate:g} requests or signed parts per second); retry "
                           f"in {wait} s", headers={"Retry-After": str(wait)})


@contextmanager
def _in_flight(request: Request, principal: Principal) -> Iterator[Principal]:
    """Count the request among ``principal``'s in flight while it runs, or refuse it with
    429 when the principal already has its cap in flight."""
    in_flight: RequestsInFlight = request.app.state.in_flight
    if not in_flight.enter(principal.name):
        raise ServiceError(429, "too-many-in-flight", f"{principal.name} already has "
                           f"{in_flight.cap} requests in flight, the most allowed; retry "
                           "when one is answered", headers={"Retry-After": "1"})
    try:
        yield principal
    finally:
        in_flight.leave(principal.name)


def _remember(request: Request, principal: Principal) -> Principal:
    # The access log names the principal, never the credential.
    request.state.principal = principal.name
    return principal


def _check_same_origin(request: Request) -> None:
    """A state-changing request carrying only the session cookie must come from the
    service's own pages (beside ``SameSite=Strict``, which old browsers ignore).

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` on such requests; a client sending
    neither is not a browser page and gains nothing from a cookie it could send anyway.
    """
    if request.method in _SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if (site is not None and site not in _SAME_SITE) or (origin is not None and origin != own):
        raise ServiceError(403, "cross-origin", "a session cookie is accepted on this "
                           "request only from the service's own pages; programs send "
                           "`Authorization: Bearer`")


async def bearer_principal(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Principal]:
    """The caller, from ``Authorization: Bearer <key>`` only."""
    principal = _from_header(request)
    if principal is None:
        raise ServiceError(401, "unauthorized", "send an API key as `Authorization: Bearer`")
    with _in_flight(request, principal):
        charge(request, principal)
        yield _remember(request, principal)


def _caller(request: Request) -> Principal:
    principal = _from_header(request)
    if principal is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        principal = _authenticator(request).from_cookie(cookie) if cookie else None
        if principal is not None:
            _check_same_origin(request)
    if principal is None:
        raise ServiceError(401, "unauthorized", "send an API key as `Authorization: Bearer` "
                           "or sign in with POST /v1/session")
    return _remember(request, principal)


async def current_principal(
    request: Request,
    _declared_bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _declared_cookie: Annotated[str | None, Depends(_cookie)],
) -> AsyncIterator[Principal]:
    """The caller, from a bearer key or else the session cookie; one request charged."""
    with _in_flight(request, _caller(request)) as principal:
        charge(request, principal)
        yield principal


async def uncharged_principal(
    request: Request,
    _declared_bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _declared_cookie: Annotated[str | None, Depends(_cookie)],
) -> AsyncIterator[Principal]:
    """The caller, as ``current_principal``, left for the route to charge what the call
    costs in one take (a sign call and its parts), so that a refused call takes nothing."""
    with _in_flight(request, _caller(request)) as principal:
        yield principal


Service = Annotated[UploadService, Depends(_service)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
UnchargedPrincipal = Annotated[Principal, Depends(uncharged_principal)]
