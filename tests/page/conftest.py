"""Fixtures of the upload page tests: Debian's headless Chromium, and the API service with
the page shipped in the package, in front of a real S3 server (radosgw) through a wire
proxy that counts every part body the browser sends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr
from streamify import apply_bucket_rules

from tests.conftest import Bucket
from tests.wireproxy import WireProxy

MiB = 1024 * 1024
SIZE_LIMITED = "carol"
"""A principal whose objects may not exceed ``LIMIT``."""
LIMIT = 20 * MiB


@dataclass
class PageService:
    """The API service on loopback serving its own page, storage behind a wire proxy."""

    origin: str
    bucket: Bucket
    proxy: WireProxy
    """Between the browser (and the service) and radosgw: counts part bodies."""
    tokens: dict[str, str]
    """API key of each principal; principal ``name`` owns the prefix ``name/``."""
    settings: Any
    contexts: list[Any] = field(default_factory=list)

    def new_page(self, browser: Any, *, phone: bool = False) -> Any:
        """A fresh browser context (its own cookies and storage) on the page at ``/``."""
        if phone:
            context = browser.new_context(viewport={"width": 360, "height": 740},
                                          is_mobile=True, has_touch=True,
                                          device_scale_factor=2)
        else:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.contexts.append(context)
        page = context.new_page()
        self.open(page)
        return page

    def open(self, page: Any) -> None:
        page.goto(f"{self.origin}/")
        page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready",
                               timeout=15_000)


@pytest.fixture
def page_service(real_bucket: Bucket, request: pytest.FixtureRequest
                 ) -> Iterator[PageService]:
    """The service; a test may give it other settings (``indirect`` parametrization with
    a dict of ``ServiceSettings`` fields)."""
    from streamify.server import (
        PrincipalSettings,
        ServiceSettings,
        create_app,
        hash_api_key,
        serve_in_thread,
    )

    tokens = {name: "stfy_" + secrets.token_urlsafe(24) for name in ("alice", "bob",
                                                                     SIZE_LIMITED)}
    proxy = WireProxy(real_bucket.endpoint)
    # No static_dir: the service serves the page shipped in the package.
    settings = ServiceSettings(
        bucket=real_bucket.name, s3_endpoint_url=proxy.url, region="us-east-1",
        principals=tuple(
            PrincipalSettings(name=name, key_sha256=hash_api_key(token), prefix=f"{name}/",
                              **({"max_object_size": LIMIT} if name == SIZE_LIMITED else {}))
            for name, token in tokens.items()),
        cookie_secret=SecretStr(secrets.token_urlsafe(32)), **getattr(request, "param", {}))
    try:
        with serve_in_thread(create_app(settings)) as origin:
            apply_bucket_rules(real_bucket.client, real_bucket.name, allowed_origins=[origin])
            running = PageService(origin, real_bucket, proxy, tokens, settings)
            yield running
            for context in running.contexts:
                context.close()
    finally:
        proxy.close()
