"""``ls``, ``find``, ``info``, ``exists`` and ``isdir`` through the API service (``api_url``
and an API key), from its object listing (``GET /v1/objects``), against moto.

Direct mode (s3fs, with S3 credentials) on the same bucket is the reference: through the
service the caller sees the same answers for its own prefix, and nothing of anyone else's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamify import Destination, HttpControlPlane, StreamifyFileSystem

from tests.conftest import Bucket
from tests.fsspec.conftest import make_fs
from tests.fsspec.test_api_mode import api, api_fs  # noqa: F401  (fixtures)
from tests.server.conftest import TOKENS, Api

TREE = {"clip.mp4": b"c" * 1000, "day1/a.mp4": b"a" * 10, "day1/b.mp4": b"b" * 20,
        "day1/raw/x.bin": b"x" * 30, "day2/z.mp4": b"z" * 40}


@pytest.fixture
def tree(api: Api) -> str:  # noqa: F811
    """``TREE`` stored under alice's prefix; the path of her folder."""
    for name, body in TREE.items():
        api.bucket.client.put_object(Bucket=api.bucket.name, Key=f"users/alice/{name}",
                                     Body=body)
    api.bucket.client.put_object(Bucket=api.bucket.name, Key="users/bob/secret.mp4",
                                 Body=b"bob's")
    return f"{api.bucket.name}/users/alice"


def _direct(bucket: Bucket, tmp_path: Path) -> StreamifyFileSystem:
    return make_fs(bucket.endpoint, tmp_path / "direct-state")


def _shape(entries: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return sorted((e["name"], e["type"], e["size"]) for e in entries)


def test_ls_find_info_and_exists_answer_as_direct_mode_does(
        api_fs: StreamifyFileSystem, api: Api, tree: str, tmp_path: Path) -> None:  # noqa: F811
    direct = _direct(api.bucket, tmp_path)
    for folder in (tree, f"{tree}/", f"{tree}/day1", f"{tree}/day1/raw"):
        assert _shape(api_fs.ls(folder)) == _shape(direct.ls(folder)), folder
        assert api_fs.ls(folder, detail=False) == sorted(direct.ls(folder, detail=False))
    assert api_fs.ls(f"{tree}/day1", detail=False) == [
        f"{tree}/day1/a.mp4", f"{tree}/day1/b.mp4", f"{tree}/day1/raw"]
    for options in ({}, {"maxdepth": 1}, {"maxdepth": 2}, {"withdirs": True},
                    {"withdirs": True, "maxdepth": 2}):
        assert api_fs.find(tree, **options) == direct.find(tree, **options), options
    assert api_fs.find(f"{tree}/day1/a.mp4") == [f"{tree}/day1/a.mp4"]
    assert api_fs.find(f"{tree}/nothing") == []
    detailed = api_fs.find(tree, detail=True)
    assert detailed[f"{tree}/day2/z.mp4"]["size"] == 40
    # Unquoted, as the API mode's info of one object always gave it.
    assert detailed[f"{tree}/clip.mp4"]["ETag"] == direct.info(
        f"{tree}/clip.mp4")["ETag"].strip('"')

    assert api_fs.info(f"{tree}/day1")["type"] == "directory"
    assert api_fs.info(f"{tree}/day1/") == {"name": f"{tree}/day1", "size": 0,
                                            "type": "directory"}
    file_info = api_fs.info(f"{tree}/day1/b.mp4")
    assert (file_info["type"], file_info["size"]) == ("file", 20)
    assert api_fs.isdir(f"{tree}/day1") and not api_fs.isdir(f"{tree}/day1/a.mp4")
    assert api_fs.exists(f"{tree}/day1") and api_fs.exists(f"{tree}/clip.mp4")
    assert not api_fs.exists(f"{tree}/day3") and not api_fs.isdir(f"{tree}/day3")
    with pytest.raises(FileNotFoundError, match="day3"):
        api_fs.info(f"{tree}/day3")
    with pytest.raises(FileNotFoundError, match="day3"):
        api_fs.ls(f"{tree}/day3")
    assert api_fs.glob(f"{tree}/day1/*.mp4") == direct.glob(f"{tree}/day1/*.mp4")


def test_a_put_lands_in_the_listing(api_fs: StreamifyFileSystem, api: Api,  # noqa: F811
                                    tmp_path: Path) -> None:
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "one.txt").write_bytes(b"1")
    (tmp_path / "up" / "two.txt").write_bytes(b"22")
    folder = f"{api.bucket.name}/users/alice/up"
    api_fs.put(str(tmp_path / "up"), folder, recursive=True)
    assert api_fs.find(folder) == [f"{folder}/one.txt", f"{folder}/two.txt"]
    # The folder now exists: a second put of a file into it goes inside, as in direct mode.
    (tmp_path / "three.txt").write_bytes(b"333")
    api_fs.put(str(tmp_path / "three.txt"), folder)
    assert api_fs.ls(folder, detail=False) == [
        f"{folder}/one.txt", f"{folder}/three.txt", f"{folder}/two.txt"]


def test_another_principal_sees_nothing_of_the_first_ones_objects(
        api: Api, tree: str, tmp_path: Path) -> None:  # noqa: F811
    bob = StreamifyFileSystem(api_url=api.url, token=TOKENS["bob"],
                              state_dir=str(tmp_path / "bob"), skip_instance_cache=True)
    bucket = api.bucket.name
    assert bob.find(f"{bucket}/users/bob") == [f"{bucket}/users/bob/secret.mp4"]
    for look in (lambda: bob.ls(tree), lambda: bob.find(tree), lambda: bob.info(tree),
                 lambda: bob.info(f"{tree}/clip.mp4"), lambda: bob.exists(tree),
                 lambda: bob.ls(bucket), lambda: bob.find(f"{bucket}/users")):
        with pytest.raises(PermissionError, match="only your own prefix") as refused:
            look()
        assert "endpoint_url" in str(refused.value)
    assert not bob.isdir(tree)


def test_the_listing_follows_every_page(api: Api, tree: str) -> None:  # noqa: F811
    control = HttpControlPlane(api.url, token=TOKENS["alice"])
    try:
        listed = list(control.list_objects(Destination(api.bucket.name, "users/alice/"),
                                           page_size=2))
    finally:
        control.close()
    assert sorted(o.destination.key for o in listed) == sorted(
        f"users/alice/{name}" for name in TREE)
    assert len({o.destination.key for o in listed}) == len(TREE)
