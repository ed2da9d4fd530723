"""Fixtures of the functional tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Bucket
from tests.wireproxy import WireProxy


@pytest.fixture
def moto_proxy(moto_bucket: Bucket) -> Iterator[WireProxy]:
    """A wire proxy in front of moto: every request the client makes, and every byte."""
    proxy = WireProxy(moto_bucket.endpoint)
    yield proxy
    proxy.close()


@pytest.fixture(autouse=True)
def _close_uploaders() -> Iterator[None]:
    """Close every uploader an engine test made (it holds its file open)."""
    from tests.functional._engine_support import UPLOADERS

    with UPLOADERS:
        yield
