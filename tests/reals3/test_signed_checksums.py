"""Additional checksums are signed into the part URLs; a real server checks the signature."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import streamify

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024


@pytest.mark.reals3
@pytest.mark.parametrize("checksum", ["sha256", "crc32"])
def test_upload_with_an_additional_checksum(tmp_path: Path, real_bucket: Bucket, state_dir: str,
                                            checksum: str) -> None:
    path = make_file(tmp_path / "v.mp4", 11 * MiB)
    result = streamify.upload(path, real_bucket.url("v.mp4"), endpoint_url=real_bucket.endpoint,
                              part_size="5MiB", checksum=checksum)
    assert result.status == "completed"
    assert hashlib.sha256(real_bucket.read("v.mp4")).digest() == hashlib.sha256(
        path.read_bytes()).digest()
