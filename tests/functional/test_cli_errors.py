"""Bad input through the real ``streamify`` command: one clear line, a non-zero exit.

Each case runs the installed entry point in a subprocess (``python -m streamify``), because
the one-line formatting happens in ``streamify.cli.main``, outside click's test runner.
The line must name what is wrong (the file, the bucket, the key, the option) and no
traceback may leak.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Bucket, free_port


@dataclass
class Failure:
    code: int
    line: str


def streamify(*args: str, env: dict[str, str] | None = None,
              user_prefix: tuple[str, ...] = ()) -> Failure:
    """Run ``streamify ARGS`` expecting it to fail; return its exit code and its one line."""
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
    run_env.update(env or {})
    done = subprocess.run([*user_prefix, sys.executable, "-m", "streamify", *args],
                          env=run_env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("streamify: error: "), lines[0]
    return Failure(done.returncode, lines[0])


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "holiday.mp4"
    path.write_bytes(b"not much of a video")
    return path


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def test_missing_source_file(moto_bucket: Bucket, tmp_path: Path, state: str) -> None:
    missing = tmp_path / "no-such-video.mp4"
    failure = streamify("upload", str(missing), moto_bucket.url("v.mp4"),
                        "--endpoint-url", moto_bucket.endpoint, "--state-dir", state)
    assert failure.code == 3
    assert str(missing) in failure.line
    assert "no such file" in failure.line


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="streamify-perm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _as_unprivileged_user() -> tuple[str, ...]:
    """A command prefix that drops root, whose permission checks never fail."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
    if setpriv is None or nobody is None:
        pytest.skip("unreadable-file case skipped: running as root, and no `setpriv` or no "
                    "`nobody` user to drop privileges with (root reads any file)")
    return (setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups")


def test_unreadable_source_file(moto_bucket: Bucket, world_readable_dir: Path) -> None:
    secret = world_readable_dir / "locked.mp4"
    secret.write_bytes(b"x" * 1024)
    secret.chmod(0o000)
    failure = streamify("upload", str(secret), moto_bucket.url("v.mp4"),
                        "--endpoint-url", moto_bucket.endpoint,
                        "--state-dir", str(world_readable_dir / "state"),
                        user_prefix=_as_unprivileged_user())
    assert failure.code == 3
    assert str(secret) in failure.line
    assert "permission denied" in failure.line


def test_unwritable_state_directory(moto_bucket: Bucket, video: Path, tmp_path: Path) -> None:
    # Under a regular file nothing can be created, even by root.
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    state = blocker / "state"
    failure = streamify("upload", str(video), moto_bucket.url("v.mp4"),
                        "--endpoint-url", moto_bucket.endpoint, "--state-dir", str(state))
    assert failure.code == 4
    assert str(state) in failure.line
    assert "--state-dir" in failure.line
    assert moto_bucket.open_uploads() == []


def test_unreachable_endpoint(video: Path, state: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    failure = streamify("upload", str(video), "s3://media/in/holiday.mp4",
                        "--endpoint-url", endpoint, "--state-dir", state)
    assert failure.code == 7
    assert "s3://media/in/holiday.mp4" in failure.line
    assert endpoint in failure.line
    assert "--endpoint-url" in failure.line


def test_missing_bucket(moto_endpoint: str, video: Path, state: str) -> None:
    failure = streamify("upload", str(video), "s3://no-such-bucket-here/in/holiday.mp4",
                        "--endpoint-url", moto_endpoint, "--state-dir", state)
    assert failure.code == 5
    assert "'no-such-bucket-here'" in failure.line
    assert "does not exist" in failure.line


@pytest.mark.reals3
@pytest.mark.parametrize("credentials", [
    {"AWS_ACCESS_KEY_ID": "NOSUCHKEY0000000000"},
    {"AWS_SECRET_ACCESS_KEY": "wrong-secret-0000000000000000000000000000"},
], ids=["unknown-key", "wrong-secret"])
def test_wrong_credentials(real_bucket: Bucket, video: Path, state: str,
                           credentials: dict[str, str]) -> None:
    failure = streamify("upload", str(video), real_bucket.url("in/holiday.mp4"),
                        "--endpoint-url", real_bucket.endpoint, "--state-dir", state,
                        env={"AWS_DEFAULT_REGION": "us-east-1", **credentials})
    assert failure.code == 6
    assert real_bucket.url("in/holiday.mp4") in failure.line
    assert "access denied" in failure.line
    assert "AWS_ACCESS_KEY_ID" in failure.line
    assert real_bucket.open_uploads() == []


@pytest.mark.parametrize(("value", "says"), [
    ("3MiB", "5MiB to 5GiB"),
    ("lots", "cannot read size 'lots'"),
])
def test_invalid_part_size(moto_bucket: Bucket, video: Path, state: str, value: str,
                           says: str) -> None:
    failure = streamify("upload", str(video), moto_bucket.url("v.mp4"),
                        "--endpoint-url", moto_bucket.endpoint, "--state-dir", state,
                        "--part-size", value)
    assert failure.code == 2
    assert "--part-size" in failure.line
    assert says in failure.line
    assert moto_bucket.open_uploads() == []


def test_bandwidth_cap_below_the_minimum(moto_bucket: Bucket, video: Path, state: str) -> None:
    failure = streamify("upload", str(video), moto_bucket.url("v.mp4"), "--endpoint-url",
                        moto_bucket.endpoint, "--state-dir", state, "--bwlimit", "1KiB")
    assert failure.code == 2
    assert "--bwlimit" in failure.line and "at least 64KiB per second" in failure.line


def test_destination_that_is_not_an_s3_url(video: Path, state: str) -> None:
    failure = streamify("upload", str(video), "media/in/holiday.mp4", "--state-dir", state)
    assert failure.code == 5
    assert "'media/in/holiday.mp4'" in failure.line
    assert "s3://bucket/key" in failure.line


def test_unknown_fsspec_protocol(moto_bucket: Bucket, state: str) -> None:
    failure = streamify("upload", "nosuch://videos/holiday.mp4", moto_bucket.url("v.mp4"),
                        "--endpoint-url", moto_bucket.endpoint, "--state-dir", state)
    assert failure.code == 3
    assert "nosuch://videos/holiday.mp4" in failure.line
    assert "unknown protocol 'nosuch'" in failure.line


@pytest.mark.parametrize("bucket", ["Bad Bucket", "media!", "x" * 256])
def test_invalid_bucket_name(video: Path, state: str, bucket: str) -> None:
    failure = streamify("upload", str(video), f"s3://{bucket}/in/holiday.mp4",
                        "--state-dir", state)
    assert failure.code == 5
    assert f"{bucket!r} is not a valid bucket name" in failure.line


def test_token_without_api(moto_bucket: Bucket, video: Path, state: str) -> None:
    failure = streamify("upload", str(video), moto_bucket.url("v.mp4"), "--endpoint-url",
                        moto_bucket.endpoint, "--state-dir", state, "--token", "stfy_abc")
    assert failure.code == 2
    assert "--token is the API key for --api" in failure.line
    assert moto_bucket.open_uploads() == []


@pytest.mark.parametrize("mode", [[], ["--local"], ["--workers", "2"]],
                         ids=["service", "local", "workers"])
def test_serve_on_a_busy_port(mode: list[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        failure = streamify("serve", "--port", str(port), *mode, env={
            "STREAMIFY_BUCKET": "media", "STREAMIFY_COOKIE_SECRET": "s" * 40})
    assert failure.code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in failure.line
    assert "--port" in failure.line
