"""fsspec's standard keywords, and a zarr store written through ``streamify://``.

zarr opens its store with ``url_to_fs(url, asynchronous=True, **storage_options)`` and
wraps a synchronous filesystem for its event loop; every chunk and metadata document is a
``pipe_file`` through the engine, read back through s3fs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import zarr
from streamify import StreamifyFileSystem

from tests.conftest import Bucket


def _options(bucket: Bucket, tmp_path: Path) -> dict[str, Any]:
    return {"endpoint_url": bucket.endpoint, "key": os.environ["AWS_ACCESS_KEY_ID"],
            "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"region_name": "us-east-1"},
            "state_dir": str(tmp_path / "state")}


@pytest.mark.parametrize("standard", [
    {"asynchronous": False}, {"loop": None}, {"use_listings_cache": False},
    {"listings_expiry_time": 10}, {"max_paths": 100}])
def test_the_filesystem_takes_fsspecs_standard_keywords(
        standard: dict[str, Any], moto_bucket: Bucket, tmp_path: Path) -> None:
    fs = fsspec.filesystem("streamify", skip_instance_cache=True,
                           **_options(moto_bucket, tmp_path), **standard)
    assert isinstance(fs, StreamifyFileSystem)
    fs.pipe_file(f"{moto_bucket.name}/a.txt", b"hello")
    assert fs.cat_file(f"{moto_bucket.name}/a.txt") == b"hello"


def test_a_zarr_store_written_through_streamify_reads_back(
        moto_bucket: Bucket, tmp_path: Path) -> None:
    url = f"streamify://{moto_bucket.name}/stores/temperature.zarr"
    data = np.arange(40 * 30, dtype="float32").reshape(40, 30)

    group = zarr.open_group(url, mode="w", storage_options=_options(moto_bucket, tmp_path))
    group.create_array("t", shape=data.shape, chunks=(16, 16), dtype="float32")[:] = data
    group.attrs["units"] = "K"

    again = zarr.open_group(url, mode="r", storage_options=_options(moto_bucket, tmp_path))
    assert again.attrs["units"] == "K"
    array = again["t"]
    assert isinstance(array, zarr.Array)
    np.testing.assert_array_equal(array[:], data)
    # Six chunks of 16 x 16 (3 x 2), each its own object, and no upload left open.
    keys = [item["Key"] for item in moto_bucket.client.list_objects_v2(
        Bucket=moto_bucket.name, Prefix="stores/temperature.zarr/t/c/")["Contents"]]
    assert len(keys) == 6
    assert moto_bucket.open_uploads() == []
