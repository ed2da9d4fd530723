"""The service's container image against the real S3 server (Ceph radosgw).

Each test runs the image as production would (``--read-only``, its own non-root user,
``STREAMIFY_*`` variables plus the secrets file mounted at /run/secrets/streamify.toml),
on the host's network and bound to 127.0.0.1 by ``--host``, and removes it afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamify.server import hash_api_key

from tests.conftest import Bucket, free_port
from tests.deploy._podman import Container, podman, run_service
from tests.helpers import make_file
from tests.reals3._support import cli_env, file_sha256, object_sha256, run_cli

pytestmark = pytest.mark.container

MiB = 1024 * 1024
TOKEN = "container-key-0123456789abcdef"
COOKIE_SECRET = "cookie-secret-of-the-container-test-0123"
PREFIX = "users/alice/"
UID = "10001"


def _secrets(directory: Path, cookie_secret: str = COOKIE_SECRET) -> Path:
    path = directory / "streamify.toml"
    path.write_text(f'cookie_secret = "{cookie_secret}"\n\n'
                    "[[principals]]\n"
                    'name = "alice"\n'
                    f'key_sha256 = "{hash_api_key(TOKEN)}"\n'
                    f'prefix = "{PREFIX}"\n')
    path.chmod(0o644)  # the service's own user reads it inside the container
    return path


class Service:
    def __init__(self, container: Container, port: int) -> None:
        self.container = container
        self.url = f"http://127.0.0.1:{port}"


def _start(image: str, bucket: Bucket, tmp_path: Path) -> Iterator[Service]:
    port = free_port()
    container = run_service(
        image,
        env={"STREAMIFY_BUCKET": bucket.name, "STREAMIFY_S3_ENDPOINT_URL": bucket.endpoint,
             "STREAMIFY_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/healthz"},
        inherit_env=["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        secrets=_secrets(tmp_path), args=["--host", "127.0.0.1", "--port", str(port)])
    try:
        container.wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield Service(container, port)
    finally:
        container.remove()


@pytest.fixture
def service(service_image: str, real_bucket: Bucket, tmp_path: Path) -> Iterator[Service]:
    yield from _start(service_image, real_bucket, tmp_path)


def test_a_read_only_container_of_its_own_user_serves_an_upload(
        service: Service, real_bucket: Bucket, tmp_path: Path) -> None:
    size = 24 * MiB + 12345
    path = make_file(tmp_path / "v.mp4", size)
    key = PREFIX + "v.mp4"
    command = [sys.executable, "-m", "streamify", "upload", str(path),
               real_bucket.url(key), "--api", service.url, "--json", "--no-progress",
               "--part-size", "8MiB"]
    result = run_cli(command, cli_env(tmp_path / "state", STREAMIFY_TOKEN=TOKEN)).result
    assert result["bytes_sent"] == size
    assert object_sha256(real_bucket, key) == file_sha256(path)
    assert real_bucket.open_uploads() == []

    state = service.container.inspect()
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    whoami = podman("exec", service.container.name, "id", "-u")
    assert whoami.stdout.strip() == UID, whoami
    assert whoami.stdout.strip() != "0"
    # Nothing of the image is writable by the service, even where it is not read-only.
    write = podman("exec", service.container.name, "python", "-c",
                   "open('/opt/streamify/written-by-the-service', 'w')")
    assert write.returncode != 0
    assert TOKEN not in service.container.logs()
    assert COOKIE_SECRET not in service.container.logs()


def test_the_image_declares_a_healthcheck_that_passes(service: Service) -> None:
    config = service.container.inspect()["Config"]
    check = config.get("Healthcheck") or {}
    assert "urllib" in " ".join(check.get("Test", [])), config
    assert "curl" not in " ".join(check.get("Test", []))
    done = podman("healthcheck", "run", service.container.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert service.container.inspect()["State"]["Health"]["Status"] == "healthy"


def test_sigterm_stops_the_service_cleanly(service: Service) -> None:
    done = podman("stop", "--time", "40", service.container.name, timeout=70)
    assert done.returncode == 0, done.stderr
    assert service.container.wait() == 0, service.container.logs()
    assert "Traceback" not in service.container.logs()


@pytest.mark.parametrize(("problem", "expected"), [
    ("missing", "cannot read the settings: config file /run/secrets/streamify.toml "
                "does not exist"),
    ("invalid", "invalid settings: cookie_secret: "),
])
def test_bad_settings_are_one_clear_line_and_a_failed_exit(
        service_image: str, real_bucket: Bucket, tmp_path: Path, problem: str,
        expected: str) -> None:
    short_secret = "too-short-1"
    secrets = None if problem == "missing" else _secrets(tmp_path, cookie_secret=short_secret)
    container = run_service(
        service_image, secrets=secrets,
        env={"STREAMIFY_BUCKET": real_bucket.name,
             "STREAMIFY_S3_ENDPOINT_URL": real_bucket.endpoint},
        args=["--host", "127.0.0.1", "--port", str(free_port())])
    try:
        assert container.wait() != 0
        logs = container.logs().strip()
        assert logs.startswith(f"streamify: error: {expected}"), logs
        assert len(logs.splitlines()) == 1, logs  # one line, no traceback
        assert short_secret not in logs
    finally:
        container.remove()
