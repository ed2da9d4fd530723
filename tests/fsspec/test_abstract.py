"""fsspec's own test suites for put, pipe and open, run on ``streamify://``.

The same suites every fsspec filesystem runs (s3fs runs them on moto too), wired as in
``fsspec.tests.abstract``: ``fs`` is the filesystem under test, ``fs_path`` the root the
suites work in (a fresh bucket), and S3 has no empty directories.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

import fsspec.tests.abstract as abstract
import pytest
from streamify import StreamifyFileSystem

from tests.conftest import Bucket
from tests.fsspec.conftest import make_fs


class StreamifyFixtures(abstract.AbstractFixtures):  # type: ignore[misc]
    @pytest.fixture
    def fs(self, bucket: Bucket, tmp_path: Path) -> StreamifyFileSystem:
        return make_fs(bucket.endpoint, tmp_path / "state")

    @pytest.fixture
    def fs_path(self, bucket: Bucket) -> str:
        return bucket.name

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestStreamifyPut(abstract.AbstractPutTests, StreamifyFixtures):  # type: ignore[misc]
    pass


class TestStreamifyPipe(abstract.AbstractPipeTests, StreamifyFixtures):  # type: ignore[misc]
    pass


class TestStreamifyOpen(abstract.AbstractOpenTests, StreamifyFixtures):  # type: ignore[misc]
    pass
