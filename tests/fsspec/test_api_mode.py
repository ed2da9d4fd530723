"""``streamify://`` through the API service (``api_url`` and an API key, no S3 credentials).

The service runs under a real uvicorn in front of a moto bucket. Writes go through it (it
signs, the bytes go straight to S3); of reads, the service offers one object's size and
ETag and the caller's completed objects under a prefix, so ``info``, ``exists``, ``ls`` and
``find`` work (``test_api_listing.py``) and the rest says to use direct mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from streamify import ConfigError, StreamifyFileSystem

from tests.conftest import Bucket
from tests.fsspec.conftest import MiB
from tests.server.conftest import TOKENS, Api, running_api


@pytest.fixture
def api(moto_bucket: Bucket) -> Iterator[Api]:
    with running_api(moto_bucket) as running:
        yield running


@pytest.fixture
def api_fs(api: Api, tmp_path: Path) -> StreamifyFileSystem:
    return StreamifyFileSystem(api_url=api.url, token=TOKENS["alice"],
                               state_dir=str(tmp_path / "state"), part_size="5MiB",
                               skip_instance_cache=True)


def test_put_goes_through_the_service_and_info_comes_from_it(
        api_fs: StreamifyFileSystem, api: Api, tmp_path: Path) -> None:
    data = os.urandom(6 * MiB)
    (tmp_path / "clip.mp4").write_bytes(data)
    path = f"{api.bucket.name}/users/alice/clip.mp4"

    result = api_fs.put_file(str(tmp_path / "clip.mp4"), f"streamify://{path}")

    assert result is not None and result.parts == 2
    assert api.bucket.read("users/alice/clip.mp4") == data
    info = api_fs.info(path)
    assert (info["name"], info["size"], info["type"]) == (path, len(data), "file")
    assert info["ETag"] == result.etag
    assert api_fs.exists(path)
    assert api_fs.ls(path, detail=False) == [path]
    assert api_fs.find(path) == [path]
    assert not api_fs.exists(f"{api.bucket.name}/users/alice/other.mp4")
    with pytest.raises(FileNotFoundError, match=r"other\.mp4"):
        api_fs.info(f"{api.bucket.name}/users/alice/other.mp4")


def test_what_the_service_cannot_do_names_direct_mode(
        api_fs: StreamifyFileSystem, api: Api, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    path = f"{api.bucket.name}/users/alice/a.txt"
    api_fs.put_file(str(tmp_path / "a.txt"), path)
    for attempt in (lambda: api_fs.cat_file(path), lambda: api_fs.open(path, "rb"),
                    lambda: api_fs.rm(path),
                    lambda: api_fs.open(path, "wb"), lambda: api_fs.pipe_file(path, b"b"),
                    lambda: fsspec.open(f"streamify://{path}", "wb", api_url=api.url,
                                        token=TOKENS["alice"]).open()):
        with pytest.raises(NotImplementedError, match="needs direct mode") as caught:
            attempt()
        assert "endpoint_url" in str(caught.value)


def test_direct_settings_with_an_api_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs token"):
        StreamifyFileSystem(api_url="http://127.0.0.1:9", skip_instance_cache=True)
    with pytest.raises(ConfigError, match="endpoint_url, key are S3 settings"):
        StreamifyFileSystem(api_url="http://127.0.0.1:9", token="t", key="k",
                            endpoint_url="http://127.0.0.1:8", skip_instance_cache=True)
    with pytest.raises(ConfigError, match="unknown upload option"):
        StreamifyFileSystem(endpoint_url="http://127.0.0.1:9", part_sise="8MiB",
                            skip_instance_cache=True)
