"""Shared fixtures: real S3 servers on loopback.

- ``moto_endpoint``: moto's threaded S3 server (real HTTP), one per test session.
- ``real_s3_endpoint``: a real S3 server (Ceph radosgw in CI) from ``S3_ENDPOINT_URL``;
  tests that use it are skipped, with the reason printed, when it is not configured.
- ``moto_bucket`` / ``real_bucket``: a fresh bucket per test, emptied and deleted after it
  (objects removed, open uploads aborted), because the real server's capacity is finite.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings

from tests.redis_server import REDIS_SERVER, RedisServer

# Property tests judge answers, not speed: a loaded machine must not fail them on time.
settings.register_profile("streamify", deadline=None)
settings.load_profile("streamify")

os.environ.setdefault("AWS_ACCESS_KEY_ID", "streamify-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "streamify-test-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Bucket:
    """A test bucket on one S3 server."""

    endpoint: str
    name: str
    client: Any

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def read(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data

    def open_uploads(self) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = self.client.list_multipart_uploads(
            Bucket=self.name).get("Uploads", [])
        return uploads


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    # The emulator's request log would print presigned URLs, signatures included.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def real_s3_endpoint() -> str:
    endpoint = os.environ.get("S3_ENDPOINT_URL")
    if not endpoint:
        pytest.skip("real S3 tier skipped: S3_ENDPOINT_URL is not set "
                    "(run `eval \"$(bash ../shared/s3/rgw-up.sh | tail -3)\"` first)")
    return endpoint


def _make_bucket(endpoint: str) -> Iterator[Bucket]:
    from streamify._s3control import s3_client

    client = s3_client(endpoint_url=endpoint, region="us-east-1")
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield Bucket(endpoint, name, client)
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> Iterator[Bucket]:
    yield from _make_bucket(moto_endpoint)


@pytest.fixture
def real_bucket(real_s3_endpoint: str) -> Iterator[Bucket]:
    yield from _make_bucket(real_s3_endpoint)


@pytest.fixture
def state_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "state")
    monkeypatch.setenv("STREAMIFY_STATE_DIR", path)
    return path


# Two lanes when the suite runs with ``-n 2 --dist loadgroup`` (scripts/test.sh): the tests
# that spend most of their time waiting (outages of a minute, a throttled network, Airflow's
# schedulers and workers) in one, every other test in the other, in collection order. The
# lanes are given to xdist as the groups of its scheduler (xdist 3.8's own ``xdist_group``
# suffix is not applied under pytest 9).
WAITING_LANE = ("tests/faults/test_outages.py", "tests/page/test_resume.py", "tests/airflow/",
                "tests/faults/test_storage_restart.py")


def lane_of(nodeid: str) -> str:
    return "waiting" if nodeid.startswith(WAITING_LANE) else "main"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class Lanes(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return lane_of(nodeid)

    return Lanes(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has an id of its own. Schemathesis names each operation's test
    ``test_x[GET /path]`` but leaves the id ``...::test_x``, and xdist schedules by id: under
    ``-n 2`` only the first operation ran. Such tests take their name as their id, and
    tests that still share an id stop the run."""
    for item in items:
        last = item.nodeid.rpartition("::")[2]
        if last != item.name and item.name.startswith(last + "[") and item.parent:
            item._id = item.parent.id.child(item.name)
    ids = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in ids.items() if count > 1)
    if shared:
        raise pytest.UsageError("tests that share an id (xdist would run one of each): "
                                + ", ".join(shared))


# A tier that CI brought up must run: .ci/run sets STREAMIFY_REQUIRE_TIERS=reals3,browser,
# and then a skipped test of such a tier (marked with it, or using the real S3 server)
# fails instead, with the reason it would have been skipped for.
REQUIRE_TIERS_ENV = "STREAMIFY_REQUIRE_TIERS"


def _required_tiers() -> set[str]:
    return {name.strip() for name in os.environ.get(REQUIRE_TIERS_ENV, "").split(",")
            if name.strip()}


def _tiers_of(item: pytest.Item) -> set[str]:
    tiers = {marker.name for marker in item.iter_markers()}
    if "real_s3_endpoint" in getattr(item, "fixturenames", ()):
        tiers.add("reals3")
    return tiers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    missing = _tiers_of(item) & _required_tiers()
    if missing:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"required tier {', '.join(sorted(missing))} did not run "
                           f"({REQUIRE_TIERS_ENV} is set): {reason}")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """Debian's redis-server on loopback (``tests/redis_server.py``), started for one test
    and closed after it; the test can stop, kill and restart it. Mark such tests
    ``@pytest.mark.redis``."""
    if not REDIS_SERVER.is_file():
        pytest.skip("redis tier skipped: Debian redis-server is not installed "
                    "(apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright, shared by every browser test."""
    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.is_file():
        pytest.skip(f"browser tier skipped: {CHROMIUM} is missing "
                    "(install the Debian package: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
