"""Three replicas of the service behind HAProxy, one Redis, one radosgw: the deployment
README.md describes, run as operators run it.

While CLI uploads (``streamify upload --api``) and an upload from the service's page go
through the load balancer, replicas are stopped with SIGTERM (drained) and SIGKILL in turn,
one comes back with a rotated key in the shared config, and Redis restarts. Every upload
finishes byte-identical; the part bodies are counted on the wire (a proxy in front of
radosgw), so "nothing stored is sent again" is measured, not taken on the uploader's word.
The limits hold for the whole service, not per replica: the cap of open uploads over ten
concurrent creates, and a burst of N requests through three replicas.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamify import apply_bucket_rules

from tests.conftest import Bucket
from tests.helpers import make_file, sha256_of_file, sha256_of_object
from tests.lb._cluster import Cluster, principal
from tests.redis_server import RedisServer
from tests.wireproxy import WireProxy, part_puts

pytestmark = [pytest.mark.lb, pytest.mark.redis, pytest.mark.reals3]

MiB = 1024 * 1024
OPEN_CAP = 5


class Deployment:
    def __init__(self, cluster: Cluster, storage: WireProxy, redis: RedisServer,
                 tokens: dict[str, str]) -> None:
        self.cluster, self.storage, self.redis, self.tokens = cluster, storage, redis, tokens

    def client(self, who: str = "alice", url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=url or self.cluster.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})


@pytest.fixture
def deployment(real_bucket: Bucket, redis_server: RedisServer, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[Deployment]:
    storage = WireProxy(real_bucket.endpoint)
    tokens = {name: "stfy_" + secrets.token_urlsafe(24) for name in ("alice", "bob")}
    settings = {
        "bucket": real_bucket.name, "s3_endpoint_url": storage.url, "region": "us-east-1",
        "cookie_secret": secrets.token_urlsafe(32),
        "principals": [principal(name, token) for name, token in tokens.items()],
        "redis_url": redis_server.url, "trusted_proxies": ["127.0.0.1"],
        "max_open_uploads": OPEN_CAP, "reload_interval": 1,
        **getattr(request, "param", {}),
    }
    cluster = Cluster(tmp_path / "cluster", settings)
    try:
        cluster.start()
        # The page at the balancer's address PUTs parts to storage from the browser.
        apply_bucket_rules(real_bucket.client, real_bucket.name,
                           allowed_origins=[cluster.url])
        yield Deployment(cluster, storage, redis_server, tokens)
    finally:
        cluster.close()
        storage.close()


def _cli_upload(path: Path, url: str, api: str, token: str, state: Path) -> subprocess.Popen[str]:
    env = {"STREAMIFY_STATE_DIR": str(state), "STREAMIFY_TOKEN": token,
           "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "streamify", "upload", str(path), url, "--api", api, "--json",
         "--no-progress", "--part-size", "8MiB", "--concurrency", "3", "--bwlimit", "2MiB"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _page_upload(browser: Any, deployment: Deployment, video: Path) -> Any:
    from tests.page._support import add_file, press_upload, sign_in, throttle

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{deployment.cluster.url}/")
    page.wait_for_function("() => window.streamifyPage && window.streamifyPage.ready",
                           timeout=15_000)
    sign_in(page, deployment.tokens["bob"])
    throttle(page, 4 * MiB)
    add_file(page, video)
    press_upload(page)
    return page


def _refused_everywhere(deployment: Deployment, token: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        codes = [httpx.get(f"{r.url}/v1/limits", timeout=5,
                           headers={"Authorization": f"Bearer {token}"}).status_code
                 for r in deployment.cluster.replicas]
        if codes == [401] * len(codes):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the rotated key still works on some replicas: {codes}")
        time.sleep(0.2)


def test_uploads_finish_through_drains_kills_a_key_rotation_and_a_redis_restart(
        deployment: Deployment, real_bucket: Bucket, browser: Any, tmp_path: Path) -> None:
    cluster, storage = deployment.cluster, deployment.storage
    files = [make_file(tmp_path / f"clip-{n}.mp4", 56 * MiB + n * 1234567, seed=n)
             for n in range(3)]
    video = make_file(tmp_path / "page.mp4", 48 * MiB, seed=9)
    runs = [_cli_upload(path, real_bucket.url(f"alice/{path.name}"), cluster.url,
                        deployment.tokens["alice"], tmp_path / f"state-{path.stem}")
            for path in files]
    # The page's parts past the third wait in front of storage until bob's key is
    # rotated, so its upload is still going when its session is ended.
    storage.hold_requests(match=lambda method, target: (
        part_puts(method, target) and "/bob/" in target
        and int(target.split("partNumber=")[1].split("&")[0]) > 3))
    page = _page_upload(browser, deployment, video)
    time.sleep(2)

    r1, r2, r3 = cluster.replicas
    assert r1.terminate() == 0, "a drained replica exits 0"
    r1.start()
    cluster.wait_for_up(3)
    r2.kill()
    time.sleep(1)
    r2.start()
    cluster.wait_for_up(3)

    # Bob's key is rotated in the shared file; r3 restarts on it, the others reload it.
    old_bob, new_bob = deployment.tokens["bob"], "stfy_" + secrets.token_urlsafe(24)
    principals = [principal("alice", deployment.tokens["alice"]), principal("bob", new_bob)]
    r3.terminate()
    cluster.write_config(principals=principals)
    r3.start()
    cluster.wait_for_up(3)
    _refused_everywhere(deployment, old_bob)
    storage.release()
    for replica in cluster.replicas:
        answer = httpx.get(f"{replica.url}/v1/limits", timeout=5,
                           headers={"Authorization": f"Bearer {new_bob}"})
        assert answer.status_code == 200, replica.name

    assert all(run.poll() is None for run in runs), "the uploads ended before the drills"
    deployment.redis.stop()
    time.sleep(2)  # uploads in progress sign and send meanwhile
    deployment.redis.start()

    results = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    for path, result in zip(files, results, strict=True):
        key = f"alice/{path.name}"
        assert sha256_of_object(real_bucket, key) == sha256_of_file(path), key
        assert result["bytes_sent"] + result.get("bytes_resumed", 0) >= path.stat().st_size
    # The page signed in with bob's old key: its session cookie went with the key, so it
    # is asked to sign in again, and its upload is then carried on with the new key.
    page.wait_for_function("() => document.body.dataset.state === 'signed-out'",
                           timeout=60_000)
    from tests.page._support import sign_in, throttle

    throttle(page, None)
    sign_in(page, new_bob)
    page.locator(".uppy-StatusBar-actionBtn--retry").click()
    page.locator(f"#done-objects li[data-key='bob/{video.name}']").wait_for(timeout=180_000)
    assert sha256_of_object(real_bucket, f"bob/{video.name}") == sha256_of_file(video)

    sent = storage.counts()
    total = sum(p.stat().st_size for p in files) + video.stat().st_size
    resent = sent.part_bytes - total
    print(f"\nload balancer: 4 uploads ({total / MiB:.0f} MiB), 1 drain, 1 kill, 1 restart "
          f"with a rotated key, 1 Redis restart; part bytes sent {sent.part_bytes} "
          f"(re-sent {resent}); exits {[r.exits for r in cluster.replicas]}")
    assert resent == 0, f"{resent} bytes of parts were sent twice"
    assert real_bucket.open_uploads() == []
    assert deployment.tokens["alice"] not in cluster.logs()
    assert old_bob not in cluster.logs() and new_bob not in cluster.logs()


@pytest.mark.parametrize("deployment", [{"max_in_flight": 20}], indirect=True)
def test_the_open_upload_cap_holds_across_three_replicas(
        deployment: Deployment, real_bucket: Bucket) -> None:
    def create(n: int) -> int:
        with deployment.client() as client:
            return client.post("/v1/uploads", json={"key": f"alice/cap-{n}.bin",
                                                    "size": 10 * MiB}).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(create, range(10)))
    assert codes == [200] * OPEN_CAP + [409] * (10 - OPEN_CAP)
    assert len(real_bucket.open_uploads()) == OPEN_CAP


@pytest.mark.parametrize("deployment", [{"rate_limit": 0.01, "rate_burst": 12}],
                         indirect=True)
def test_a_rate_limit_of_n_is_n_for_the_whole_service(deployment: Deployment) -> None:
    answers = []
    with deployment.client() as client:
        for _ in range(30):
            answers.append(client.get("/v1/limits").status_code)
    assert answers.count(200) == 12, answers
    assert answers.count(429) == 18
    # Each replica answered its share: the limit is not one replica's.
    assert httpx.get(f"{deployment.cluster.url}/metrics").status_code == 403
    served = deployment.cluster.served()
    assert sorted(served) == ["r1", "r2", "r3"] and min(served.values()) >= 5, served
