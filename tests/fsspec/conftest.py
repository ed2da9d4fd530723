"""The ``streamify://`` filesystem against real S3 servers on loopback.

``bucket`` runs a test on moto's server and, in the real-S3 tier, again on radosgw (Ceph
checks signatures and Content-MD5, moto does not). ``make_fs`` builds the filesystem the
way a user would, with s3fs's options.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from streamify import StreamifyFileSystem

from tests.conftest import Bucket

MiB = 1024 * 1024


def make_fs(endpoint: str, state_dir: str | Path, **options: Any) -> StreamifyFileSystem:
    """A fresh ``StreamifyFileSystem`` (never fsspec's cached instance) on ``endpoint``."""
    settings: dict[str, Any] = {
        "endpoint_url": endpoint, "key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"region_name": "us-east-1"}, "state_dir": str(state_dir),
        "part_size": "5MiB", "skip_instance_cache": True}
    settings.update(options)
    return StreamifyFileSystem(**settings)


@pytest.fixture(params=["moto", pytest.param("radosgw", marks=pytest.mark.reals3)])
def bucket(request: pytest.FixtureRequest) -> Bucket:
    """A fresh bucket on moto, and on radosgw in the real-S3 tier."""
    name = "moto_bucket" if request.param == "moto" else "real_bucket"
    found: Bucket = request.getfixturevalue(name)
    return found


@pytest.fixture
def fs(bucket: Bucket, tmp_path: Path) -> StreamifyFileSystem:
    return make_fs(bucket.endpoint, tmp_path / "state")


def write_tree(root: Path, sizes: list[int]) -> dict[str, bytes]:
    """Files ``d<i % 4>/f<i>.bin`` of the given sizes under ``root``; relative path -> bytes."""
    files = {}
    for number, size in enumerate(sizes):
        relative = f"d{number % 4}/f{number:02d}.bin"
        data = os.urandom(size)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        files[relative] = data
    return files
