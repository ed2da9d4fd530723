"""Fixtures of the notebook tests in a real Jupyter server: the server (its kernels reach
the real S3 server, whose bucket lets the server's origin in) and a fresh browser page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamify import apply_bucket_rules

from tests.conftest import Bucket
from tests.notebook._jupyter import JupyterServer


@pytest.fixture
def jupyter(tmp_path: Path, real_bucket: Bucket) -> Iterator[JupyterServer]:
    """JupyterLab (and Notebook 7) whose kernels reach radosgw; the bucket's CORS rule
    allows the server's origin."""
    root = tmp_path / "root"
    root.mkdir()
    env = {"STREAMIFY_STATE_DIR": str(tmp_path / "state"),
           "AWS_DEFAULT_REGION": "us-east-1"}
    for server in JupyterServer.start(root, env, tmp_path / "jupyter.log"):
        apply_bucket_rules(real_bucket.client, real_bucket.name, allowed_origins=[server.url])
        yield server


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    opened = context.new_page()
    yield opened
    context.close()
