"""The service's container image (``Containerfile``), run by Debian podman.

``service_image`` is the image to test: when ``STREAMIFY_IMAGE_BUILD_STATUS`` names the
status file of a ``scripts/build-image.sh`` running in the background (as CI does), it waits
for that build; otherwise it takes ``localhost/streamify:latest`` as it is, and skips, with
the reason, when there is none. The container tests run last, so that the build overlaps
the rest of the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

IMAGE = "localhost/streamify:latest"
BUILD_STATUS_ENV = "STREAMIFY_IMAGE_BUILD_STATUS"
BUILD_WAIT = 25 * 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Container tests last (a stable sort: every other test keeps its order)."""
    items.sort(key=lambda item: item.get_closest_marker("container") is not None)


def _image_exists(image: str) -> bool:
    return subprocess.run(["podman", "image", "exists", image], check=False).returncode == 0


def _wait_for_build(status_file: Path) -> None:
    deadline = time.monotonic() + BUILD_WAIT
    while not status_file.is_file():
        if time.monotonic() > deadline:
            pytest.fail(f"the image build did not finish in {BUILD_WAIT / 60:.0f} min "
                        f"(no {status_file}; {BUILD_STATUS_ENV} is set)")
        time.sleep(2)
    status = status_file.read_text().strip()
    if status != "ok":
        pytest.fail(f"the image build {status} (scripts/build-image.sh)")


@pytest.fixture(scope="session")
def service_image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("container tier skipped: podman is not installed "
                    "(apt-get install podman runc mmdebstrap)")
    status_file = os.environ.get(BUILD_STATUS_ENV)
    if status_file:
        _wait_for_build(Path(status_file))
    if not _image_exists(IMAGE):
        if status_file:
            pytest.fail(f"the image build said ok but there is no {IMAGE}")
        pytest.skip(f"container tier skipped: no image {IMAGE}; run "
                    "bash scripts/build-image.sh")
    return IMAGE
