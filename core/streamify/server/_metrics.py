"""``ServiceMetrics``: what the service counts, served at ``/metrics`` for Prometheus.

Each app has its own ``CollectorRegistry``, so several apps in one process (tests, the
local stack) count apart. Every label comes from a small fixed set: a route's template
(``/v1/uploads/{upload_id}/sign``, never the path a caller sent), an HTTP method from the
standard ones, a status, a problem type (``_problems``), an S3 operation and error code.
No key, upload id, principal, credential or cookie is ever a label.

Counted per process: with ``streamify serve --workers N`` each worker counts its own
requests and a scrape reaches one of them. In production each replica runs one worker
(scale out with replicas), so a scrape of a replica sees all of its requests.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.types import Scope

__all__ = ["ServiceMetrics", "route_template", "router"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_UNMATCHED = "(unmatched)"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0)


class ServiceMetrics:
    """The service's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "streamify_http_requests", "HTTP requests answered, by route template, method "
            "and status", ["route", "method", "status"], registry=registry)
        self.latency = Histogram(
            "streamify_http_request_duration_seconds", "Time from a request's arrival to "
            "the end of its answer, by route template and method", ["route", "method"],
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.urls_signed = Counter(
            "streamify_urls_signed", "Presigned URLs handed out (one per part signed, one "
            "per form upload)", registry=registry)
        self.uploads_created = Counter(
            "streamify_uploads_created", "Multipart uploads started", registry=registry)
        self.uploads_completed = Counter(
            "streamify_uploads_completed", "Multipart uploads completed by storage (a "
            "repeated completion is not counted again)", registry=registry)
        self.uploads_aborted = Counter(
            "streamify_uploads_aborted", "Multipart uploads aborted (by their owner, or "
            "by the service when their parts exceeded the owner's size limit)",
            registry=registry)
        self.declared_bytes = Counter(
            "streamify_declared_bytes", "Sizes declared by clients when they started an "
            "upload, summed", registry=registry)
        self.problems = Counter(
            "streamify_problems", "Error answers, by status and problem type (the "
            "problem's urn:streamify:problem: suffix)", ["status", "type"],
            registry=registry)
        self.storage_errors = Counter(
            "streamify_storage_errors", "Errors storage answered, by S3 operation and "
            "error code", ["operation", "code"], registry=registry)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (Prometheus text by default),
        and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def request(self, scope: Scope, status: int, seconds: float) -> None:
        """Count an answered request (``AccessLogMiddleware`` times it, once for both)."""
        method = str(scope.get("method", ""))
        method = method if method in _METHODS else "OTHER"
        route = route_template(scope)
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def problem(self, status: int, kind: str) -> None:
        self.problems.labels(str(status), kind).inc()

    def storage_error(self, operation: str, code: str | None) -> None:
        self.storage_errors.labels(operation, code or "unknown").inc()


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (a mount's prefix for the files
    under it), or ``(unmatched)``: never the path itself, which holds keys and ids."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else _UNMATCHED


router = APIRouter()


@router.get("/metrics", tags=["health"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (text format, or OpenMetrics when asked). No
    credentials: serve it only inside the cluster, or turn it off (``metrics = false``)."""
    service_metrics: ServiceMetrics = request.app.state.metrics
    body, content_type = service_metrics.exposition(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
