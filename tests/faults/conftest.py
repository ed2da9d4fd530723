"""Fixtures of the fault suite: the stack (S3 and a real API service process, a wire proxy
in front of each) on moto, or on the real S3 server for the ``reals3`` cases."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults._stack import Stack, open_stack


@pytest.fixture(autouse=True)
def _quiet_moto() -> None:
    # moto logs, with a traceback, every part it refuses after an abort the test made.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)


@pytest.fixture
def stack(moto_endpoint: str) -> Iterator[Stack]:
    with open_stack(moto_endpoint) as running:
        yield running


@pytest.fixture
def direct_stack(moto_endpoint: str) -> Iterator[Stack]:
    """The stack without an API service, for tests that go straight to S3 only."""
    with open_stack(moto_endpoint, services=0) as running:
        yield running


@pytest.fixture(params=["direct", "api"])
def mode_stack(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[tuple[Stack, str]]:
    """The stack and the mode of a test run both ways: straight to S3 (``"direct"``, no
    service started) and through the API service (``"api"``)."""
    mode: str = request.param
    with open_stack(moto_endpoint, services=int(mode == "api")) as running:
        yield running, mode


@pytest.fixture
def real_stack(real_s3_endpoint: str) -> Iterator[Stack]:
    with open_stack(real_s3_endpoint, services=0) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: the fault suite (tests/faults): network, process and data faults "
        "and the soak; `-m 'not faults'` leaves it out")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)
