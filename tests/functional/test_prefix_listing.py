"""``streamify upload DIR s3://bucket/prefix/`` lists the prefix once to learn which files
are already there, instead of a HEAD per file; a prefix too full for that gets the HEADs.

The command runs as a real process against moto's S3 server, through the counting proxy
that records every request it makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Bucket
from tests.helpers import make_file, parts_held_at_once
from tests.wireproxy import WireProxy

MiB = 1024 * 1024


def _upload(folder: Path, bucket: Bucket, moto_proxy: WireProxy, state_dir: str
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
    run = subprocess.run(
        [sys.executable, "-m", "streamify", "upload", str(folder), bucket.url("in/"),
         "--endpoint-url", moto_proxy.url, "--part-size", "5MiB", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return run


def _kinds(moto_proxy: WireProxy) -> list[str]:
    """Each request as HEAD, LIST (objects), PUT (object or part) or the method itself."""
    kinds = []
    for method, target in moto_proxy.requests:
        if method == "GET" and "list-type=2" in target:
            kinds.append("LIST")
        else:
            kinds.append(method)
    return kinds


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for name, size in [("a.mov", 100), ("b.mov", MiB), ("c.mov", 2 * MiB),
                       ("big.mov", 11 * MiB)]:
        make_file(folder / name, size)
    return folder


def test_a_folder_is_listed_once_and_an_unchanged_rerun_sends_nothing(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    folder = _folder(tmp_path)
    _upload(folder, moto_bucket, moto_proxy, state_dir)
    first = _kinds(moto_proxy)
    heads = [target for method, target in moto_proxy.requests if method == "HEAD"]
    # No "is it there already?" per file: the one HEAD reads back the completed big file.
    assert first.count("LIST") == 1 and heads == [f"/{moto_bucket.name}/in/shoot/big.mov"], \
        moto_proxy.requests
    # Three one-PUT files and one of three parts.
    assert first.count("PUT") == 3 + 3, moto_proxy.requests
    assert moto_bucket.read("in/shoot/big.mov") == (folder / "big.mov").read_bytes()

    moto_proxy.requests.clear()
    again = _upload(folder, moto_bucket, moto_proxy, state_dir)
    assert again.stdout.count("already there: ") == 4, again.stdout
    kinds = _kinds(moto_proxy)
    assert "PUT" not in kinds and "HEAD" not in kinds and kinds.count("LIST") == 1, kinds


def test_a_file_changed_since_the_last_run_is_sent_again(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    folder = _folder(tmp_path)
    _upload(folder, moto_bucket, moto_proxy, state_dir)
    make_file(folder / "b.mov", MiB, seed=7)  # same size, other bytes
    moto_proxy.requests.clear()
    again = _upload(folder, moto_bucket, moto_proxy, state_dir)
    assert again.stdout.count("already there: ") == 3, again.stdout
    assert _kinds(moto_proxy).count("PUT") == 1, moto_proxy.requests
    assert moto_bucket.read("in/shoot/b.mov") == (folder / "b.mov").read_bytes()


def test_a_prefix_full_of_other_objects_gets_a_head_per_file(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    make_file(folder / "a.mov", 100)
    make_file(folder / "b.mov", 200)
    # Over ten objects per file to upload already under the prefix the files share.
    for n in range(21):
        moto_bucket.client.put_object(Bucket=moto_bucket.name, Key=f"in/shoot/old/{n}",
                                      Body=b"x")
    _upload(folder, moto_bucket, moto_proxy, state_dir)
    kinds = _kinds(moto_proxy)
    assert kinds.count("HEAD") == 2 and kinds.count("PUT") == 2, moto_proxy.requests
    assert moto_bucket.read("in/shoot/b.mov") == (folder / "b.mov").read_bytes()


def _held_at_once(folder: Path, bucket: Bucket, proxy: WireProxy, state_dir: str,
                  names: tuple[str, ...], expected: int) -> list[str]:
    """Upload ``folder`` with --jobs 1 --concurrency 4 (the memory of four 5 MiB parts)
    while the proxy holds the PUTs of the files named ``names...`` (``parts_held_at_once``)."""
    def start() -> Callable[[], None]:
        env = {**os.environ, "STREAMIFY_STATE_DIR": state_dir}
        child = subprocess.Popen(
            [sys.executable, "-m", "streamify", "upload", str(folder), bucket.url("in/"),
             "--endpoint-url", proxy.url, "--part-size", "5MiB", "--jobs", "1",
             "--concurrency", "4", "--no-progress"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def finish() -> None:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            assert out.count("completed: ") == len(list(folder.iterdir())), out

        return finish

    return parts_held_at_once(proxy, names, expected, start)


def test_files_of_one_part_share_the_memory_of_a_large_one(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    make_file(folder / "a-big.mov", 11 * MiB)  # three parts of 5 MiB: first in line
    for n in range(8):
        make_file(folder / f"small-{n}.mov", 100 * 1024, seed=n)
    # The large file's three parts in flight, and one small file beside them.
    held = _held_at_once(folder, moto_bucket, moto_proxy, state_dir, ("a-big", "small"),
                         expected=4)
    assert held == ["a-big.mov"] * 3 + ["small-0.mov"], held
    assert moto_bucket.read("in/shoot/small-7.mov") == (folder / "small-7.mov").read_bytes()


def test_a_large_file_is_not_passed_over_by_the_small_ones_behind_it(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for n in range(3):
        make_file(folder / f"a-small-{n}.mov", 100 * 1024, seed=n)  # sent at once
    make_file(folder / "b-big.mov", 11 * MiB)  # needs three parts' memory
    for n in range(5):
        make_file(folder / f"c-small-{n}.mov", 100 * 1024, seed=10 + n)
    # As the first small files finish, the memory they free goes to the large file in
    # line before the small ones behind it: its three parts, then one small file.
    held = _held_at_once(folder, moto_bucket, moto_proxy, state_dir, ("b-big", "c-small"),
                         expected=4)
    assert held == ["b-big.mov"] * 3 + ["c-small-0.mov"], held
    assert moto_bucket.read("in/shoot/b-big.mov") == (folder / "b-big.mov").read_bytes()


def test_a_store_that_refuses_the_listing_gets_a_head_per_file(
        tmp_path: Path, moto_bucket: Bucket, moto_proxy: WireProxy, state_dir: str) -> None:
    # As for an IAM user allowed s3:PutObject and s3:GetObject but not s3:ListBucket.
    folder = _folder(tmp_path)
    moto_proxy.fail_requests(403, "AccessDenied", count=10,
                             match=lambda method, target: "list-type=2" in target)
    _upload(folder, moto_bucket, moto_proxy, state_dir)
    kinds = _kinds(moto_proxy)
    assert moto_proxy.faults["403 AccessDenied"] == 1, moto_proxy.requests
    # Each file asked for itself (the big one also reads itself back after complete).
    assert kinds.count("HEAD") == 4 + 1, moto_proxy.requests
    assert moto_bucket.read("in/shoot/c.mov") == (folder / "c.mov").read_bytes()
