"""``create_app``: the ASGI application, built from ``ServiceSettings`` and nothing else.

The app is stateless: S3 holds every upload's state, so any number of instances can run
behind one load balancer and any of them can serve the next call of an upload.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from .._s3control import S3ControlPlane
from . import _companion, _metrics, _native, _readiness
from ._auth import Authenticator
from ._drain import Drain
from ._headers import SecurityHeadersMiddleware, content_security_policy
from ._limits import InFlightLimit, LocalLocks, PrincipalLocks, RateLimiter
from ._metrics import ServiceMetrics
from ._middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    NoStoreMiddleware,
    RequestIdMiddleware,
)
from ._problems import ServiceError, UnexpectedErrorMiddleware, install_error_handlers
from ._readiness import Readiness, storage_check, store_check
from ._service import UploadService
from ._settings import ServiceSettings, load_settings
from ._shared_limits import LimitsStore, SharedInFlight, SharedLocks, SharedRateLimiter

__all__ = ["app_from_environment", "create_app"]

PAGE_DIR = Path(__file__).parent / "static"
"""The upload page (built from ``web/`` by ``scripts/build-page.sh``)."""


class Health(BaseModel):
    status: str


def create_app(settings: ServiceSettings, *, control: S3ControlPlane | None = None) -> FastAPI:
    """The API service for ``settings``.

    ``control`` defaults to an ``S3ControlPlane`` on the configured endpoint with the
    standard AWS credential chain; creating the app does no I/O.
    """
    docs = settings.docs
    app = FastAPI(
        title="Streamify API",
        version=__version__,
        summary="Control plane for resumable S3 multipart uploads: initiate, sign, list, "
                "complete, abort. The bytes go straight to S3 through presigned URLs.",
        openapi_url="/openapi.json",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.settings = settings
    app.state.metrics = metrics = ServiceMetrics()
    app.state.authenticator = Authenticator(settings)
    # Limits in this process, or in Redis for every replica (``app.state.limits_store``,
    # whose ``ping()`` says whether it answers; ``None`` without ``redis_url``).
    creating: PrincipalLocks
    if settings.redis_url is None:
        app.state.limits_store = None
        app.state.rate_limiter = RateLimiter(rate=settings.rate_limit,
                                             burst=settings.rate_burst)
        app.state.in_flight = InFlightLimit(cap=settings.max_in_flight)
        creating = LocalLocks()
    else:
        store = LimitsStore(settings.redis_url.get_secret_value(),
                            namespace=f"streamify:{settings.bucket}:")
        app.state.limits_store = store
        app.state.rate_limiter = SharedRateLimiter(store, rate=settings.rate_limit,
                                                   burst=settings.rate_burst)
        app.state.in_flight = SharedInFlight(store, cap=settings.max_in_flight)
        creating = SharedLocks(store)
    app.state.service = UploadService(settings, control or S3ControlPlane(
        endpoint_url=settings.s3_endpoint_url, region=settings.region,
        max_pool_connections=32), creating=creating, metrics=metrics)
    install_error_handlers(app)
    # Operations: /readyz (storage, the limits store, not draining) and /metrics.
    app.state.drain = Drain()
    checks = {"storage": storage_check(app.state.service.control, settings.bucket)}
    if app.state.limits_store is not None:
        checks["limits_store"] = store_check(app.state.limits_store.ping)
    app.state.readiness = Readiness(app.state.drain, checks,
                                    timeout=settings.ready_timeout)
    app.include_router(_readiness.router)
    if settings.metrics:
        app.include_router(_metrics.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Health:
        """Liveness: the process answers. It does not call S3, and it runs on the event
        loop, so busy worker threads (signing) never delay it."""
        return Health(status="ok")

    app.include_router(_native.router)
    app.include_router(_companion.router)
    # The upload page shipped in the package, unless STREAMIFY_STATIC_DIR names another.
    static_dir = settings.static_dir if settings.static_dir is not None else PAGE_DIR
    app.mount("/ui", StaticFiles(directory=static_dir, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def upload_page() -> FileResponse:
        """The page's ``index.html`` at the root too: the address people are given."""
        page = static_dir / "index.html"
        if not page.is_file():
            raise ServiceError(404, "not-found", "the static directory has no "
                               "index.html: there is no page at /")
        return FileResponse(page)

    # The last added runs first: forwarded headers are resolved before anything logs, and
    # an unforeseen fault is answered inside every middleware that adds headers.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes,
                       timeout=settings.body_timeout)
    app.add_middleware(NoStoreMiddleware, except_prefix="/ui/")
    app.add_middleware(SecurityHeadersMiddleware,
                       policy=content_security_policy(settings.s3_endpoint_url))
    app.add_middleware(AccessLogMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)  # before the rest: every line has the id
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware,
                           trusted_hosts=list(settings.trusted_proxies))
    return app


def app_from_environment() -> FastAPI:
    """The app configured from ``STREAMIFY_*`` variables (and ``STREAMIFY_CONFIG_FILE``);
    the factory ``streamify serve --workers N`` hands to each worker process."""
    return create_app(load_settings())
