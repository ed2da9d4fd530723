"""The API service served by a real uvicorn on loopback, in front of a test bucket.

Two principals own different prefixes: ``alice`` (``users/alice/``, at most 1 GiB per
object) and ``bob`` (``users/bob/``). ``Api.log`` holds every log line the process wrote
at INFO and above while the test ran, so tests can check what never appears there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from streamify.server import (
    PrincipalSettings,
    ServiceSettings,
    create_app,
    hash_api_key,
    serve_in_thread,
)

from tests.conftest import Bucket

GiB = 1024**3
MiB = 1024**2
TOKENS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-fedcba9876543210"}
PREFIXES = {"alice": "users/alice/", "bob": "users/bob/"}
COOKIE_SECRET = "cookie-secret-for-tests-only-0123456789"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # moto's werkzeug request log is the storage server's, not the service's.
        if not record.name.startswith("werkzeug"):
            self.lines.append(self.format(record))


@dataclass
class Api:
    url: str
    bucket: Bucket
    settings: ServiceSettings
    capture: _Capture
    app: FastAPI
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = "alice", **kwargs: Any) -> httpx.Client:
        """An HTTP client for principal ``who`` (``None``: no credentials)."""
        headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    def key(self, who: str, name: str) -> str:
        return PREFIXES[who] + name

    @property
    def log(self) -> str:
        return "\n".join(self.capture.lines)


def service_settings(bucket: Bucket, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "bucket": bucket.name, "s3_endpoint_url": bucket.endpoint, "region": "us-east-1",
        "cookie_secret": SecretStr(COOKIE_SECRET),
        "principals": (
            PrincipalSettings(name="alice", key_sha256=hash_api_key(TOKENS["alice"]),
                              prefix=PREFIXES["alice"], max_object_size=GiB),
            PrincipalSettings(name="bob", key_sha256=hash_api_key(TOKENS["bob"]),
                              prefix=PREFIXES["bob"]),
        ),
    }
    values.update(overrides)
    return ServiceSettings(**values)


@contextlib.contextmanager
def running_api(bucket: Bucket, **overrides: Any) -> Iterator[Api]:
    """The service for ``bucket`` on a free loopback port, its log captured."""
    capture = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    settings = service_settings(bucket, **overrides)
    app = create_app(settings)
    try:
        with serve_in_thread(app) as url:
            api = Api(url, bucket, settings, capture, app)
            yield api
            for client in api.clients:
                client.close()
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


@pytest.fixture
def api(moto_bucket: Bucket) -> Iterator[Api]:
    with running_api(moto_bucket) as running:
        yield running


@pytest.fixture
def real_api(real_bucket: Bucket) -> Iterator[Api]:
    with running_api(real_bucket) as running:
        yield running
