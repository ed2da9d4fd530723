"""Limits held in Redis are global: two replicas of the service (two real uvicorn servers on
loopback, one bucket, one Debian redis-server) allow each principal every limit once, not
twice. And while the store is down, uploads in progress carry on; new ones are refused
with 503 until it is back, with no restart of the service.

The scripts themselves are tested against the same real redis-server, below.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from streamify.server._problems import ServiceError
from streamify.server._shared_limits import (
    LIMITS_LOGGER,
    LimitsStore,
    SharedInFlight,
    SharedLocks,
    SharedRateLimiter,
)

from tests.conftest import Bucket
from tests.redis_server import RedisServer
from tests.server._support import MiB, assert_companion_error, assert_problem, put
from tests.server.conftest import Api, running_api, service_settings
from tests.wireproxy import WireProxy

pytestmark = pytest.mark.redis

UNLIMITED = {"rate_limit": 10_000, "rate_burst": 10_000}


@contextlib.contextmanager
def two_replicas(bucket: Bucket, redis: RedisServer,
                 **overrides: Any) -> Iterator[tuple[Api, Api]]:
    """Two instances of the service on one bucket, their limits in one Redis."""
    with running_api(bucket, redis_url=redis.url, **overrides) as first, \
            running_api(bucket, redis_url=redis.url, **overrides) as second:
        yield first, second


def _statuses(answers: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return counts


# ---------------------------------------------------------------------- two replicas
def test_a_burst_over_two_replicas_is_allowed_once(moto_bucket: Bucket,
                                                   redis_server: RedisServer) -> None:
    """Twenty calls, alternating between the replicas, with a burst of ten and next to no
    refill: ten pass in all (kept per replica, twenty would)."""
    with two_replicas(moto_bucket, redis_server, rate_limit=0.01, rate_burst=10) as apis:
        clients = [api.client("alice") for api in apis]
        answers = [clients[n % 2].get("/v1/limits") for n in range(20)]
        assert _statuses(answers) == {200: 10, 429: 10}
        refused = assert_problem(answers[-1], 429, "rate-limited")
        assert "alice" in refused["detail"]
        assert int(answers[-1].headers["Retry-After"]) >= 1
        # Another principal's bucket is its own.
        assert apis[1].client("bob").get("/v1/limits").status_code == 200


def test_open_uploads_are_capped_across_replicas(real_bucket: Bucket,
                                                 redis_server: RedisServer) -> None:
    """Ten creates at once, five on each replica, with room for five: exactly five are
    started and five refused with 409 (a lock per replica let six through)."""
    with two_replicas(real_bucket, redis_server, max_open_uploads=5, max_in_flight=20,
                      **UNLIMITED) as apis:
        clients = [api.client("alice") for api in apis]
        start = threading.Barrier(10)

        def create(number: int) -> httpx.Response:
            start.wait()
            return clients[number % 2].post("/v1/uploads", json={
                "key": f"users/alice/clip-{number}.mp4", "size": 6 * MiB})

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(create, range(10)))
        assert _statuses(answers) == {200: 5, 409: 5}, [a.text for a in answers]
        assert_problem(next(a for a in answers if a.status_code == 409), 409,
                       "too-many-uploads")
        assert len(real_bucket.open_uploads()) == 5


def _is_listing(method: str, target: str) -> bool:
    return method == "GET" and "list-type=2" in target


def _wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_requests_in_flight_are_capped_across_replicas(moto_bucket: Bucket,
                                                       redis_server: RedisServer) -> None:
    """Alice's listings are held in storage while she sends twelve, half to each replica:
    only ``max_in_flight`` (3) of them reach storage in all, the rest are refused at once
    (counted per replica, six would reach it)."""
    proxy = WireProxy(moto_bucket.endpoint)
    behind_proxy = Bucket(proxy.url, moto_bucket.name, moto_bucket.client)
    try:
        with two_replicas(behind_proxy, redis_server, max_in_flight=3, **UNLIMITED) as apis:
            clients = [api.client("alice") for api in apis]
            proxy.hold_requests(match=_is_listing)
            with ThreadPoolExecutor(12) as pool:
                calls = [pool.submit(clients[n % 2].get, "/v1/objects") for n in range(12)]
                try:
                    _wait_until(lambda: proxy.held >= 3 and sum(c.done() for c in calls) >= 9)
                    held = proxy.held
                finally:
                    proxy.release()
                answers = [c.result() for c in calls]
            # Every request that was let in was given back: alice is served again on both.
            for client in clients:
                assert client.get("/v1/limits").status_code == 200
    finally:
        proxy.close()
    assert held == 3
    assert _statuses(answers) == {200: 3, 429: 9}
    assert_problem(next(a for a in answers if a.status_code == 429), 429,
                   "too-many-in-flight")


def _sign(client: httpx.Client, key: str, upload_id: str, number: int) -> dict[str, Any]:
    answer = client.post(f"/v1/uploads/{upload_id}/sign",
                         json={"key": key, "parts": [{"number": number}]})
    assert answer.status_code == 200, answer.text
    signed: dict[str, Any] = answer.json()["parts"][0]
    return signed


def test_an_upload_in_progress_carries_on_while_the_store_is_down(
        moto_bucket: Bucket, redis_server: RedisServer) -> None:
    """The store stops mid-upload: the upload still signs, lists and completes on either
    replica; a new upload is refused with 503 and Retry-After; the outage is logged once
    per replica. The store comes back: uploads start again, with no restart."""
    key = "users/alice/movie.bin"
    data = bytes(range(256)) * (6 * MiB // 256)
    with two_replicas(moto_bucket, redis_server, **UNLIMITED) as (first, second):
        a, b = first.client("alice"), second.client("alice")
        created = a.post("/v1/uploads", json={"key": key, "size": len(data),
                                              "part_size": 5 * MiB})
        assert created.status_code == 200, created.text
        upload_id = created.json()["upload_id"]
        signed = _sign(a, key, upload_id, 1)
        one = put(signed["url"], data[:5 * MiB], signed["headers"])
        assert one.status_code == 200

        redis_server.stop()
        signed = _sign(b, key, upload_id, 2)
        two = put(signed["url"], data[5 * MiB:], signed["headers"])
        assert two.status_code == 200
        parts = a.get(f"/v1/uploads/{upload_id}/parts", params={"key": key})
        assert parts.status_code == 200 and len(parts.json()["parts"]) == 2
        done = b.post(f"/v1/uploads/{upload_id}/complete", json={"key": key, "parts": [
            {"number": 1, "etag": one.headers["ETag"]},
            {"number": 2, "etag": two.headers["ETag"]}]})
        assert done.status_code == 200, done.text
        assert moto_bucket.read(key) == data

        for client in (a, b):
            refused = client.post("/v1/uploads", json={"key": "users/alice/next.bin",
                                                       "size": 1})
            problem = assert_problem(refused, 503, "limits-store-unreachable")
            assert "limits store" in problem["detail"]
            assert "already started" in problem["detail"]
            assert refused.headers["Retry-After"] == "5"
        companion = a.post("/s3/multipart", json={
            "filename": "next.bin", "type": "video/mp4", "metadata": {"size": "1"}})
        assert "limits store" in assert_companion_error(companion, 503)
        assert moto_bucket.open_uploads() == []
        # Once per replica, however many calls failed (both replicas log to this process).
        assert first.log.count('"event":"limits-store-unreachable"') == 2, first.log

        redis_server.start()
        for number, client in enumerate((a, b)):
            _wait_until(_creates(client, f"users/alice/after-{number}.bin"), seconds=10)
        assert len(moto_bucket.open_uploads()) == 2
        assert first.log.count('"event":"limits-store-reachable"') == 2, first.log


def _creates(client: httpx.Client, key: str) -> Callable[[], bool]:
    return lambda: client.post("/v1/uploads", json={"key": key, "size": 1}).status_code == 200


# ---------------------------------------------------------------------- the scripts
@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[LimitsStore]:
    store = LimitsStore(redis_server.url, namespace="streamify:test:")
    yield store
    store.close()


def test_a_cost_above_the_burst_counts_as_the_burst(store: LimitsStore) -> None:
    limiter = SharedRateLimiter(store, rate=0.01, burst=3)
    assert limiter.take("alice", 50) == 0  # a full bucket lets it through, once
    assert limiter.take("alice", 1) == 100  # then one token takes 1 / 0.01 s
    assert limiter.take("alice", 50) == 300  # and the capped cost 3 / 0.01 s


def test_the_bucket_refills_at_the_rate_up_to_the_burst(store: LimitsStore) -> None:
    limiter = SharedRateLimiter(store, rate=0.5, burst=2)
    assert limiter.take("alice", 2) == 0
    assert limiter.take("alice", 1) == 2  # 1 token at 0.5 a second
    time.sleep(2.1)
    assert limiter.take("alice", 1) == 0
    assert limiter.take("alice", 1) == 2
    # Idle, the bucket's key lasts until the bucket would be full again, and no longer.
    ttl = store.call(lambda r: r.pttl("streamify:test:rate:alice"))
    assert 0 < ttl <= 2 / 0.5 * 1000 + 1000


def test_two_limiters_on_one_store_share_each_bucket(store: LimitsStore) -> None:
    first = SharedRateLimiter(store, rate=0.01, burst=4)
    second = SharedRateLimiter(store, rate=0.01, burst=4)
    assert [first.take("alice"), second.take("alice"), first.take("alice", 2)] == [0, 0, 0]
    assert second.take("alice") > 0 and first.take("bob", 4) == 0


def test_the_in_flight_cap_holds_across_counters_and_a_lost_request_expires(
        store: LimitsStore) -> None:
    first = SharedInFlight(store, cap=2, lease=2.0)
    second = SharedInFlight(store, cap=2, lease=2.0)
    assert first.enter("alice") and second.enter("alice")
    assert not first.enter("alice") and not second.enter("alice")
    assert first.enter("bob")
    second.leave("alice")
    # From here on, ``first``'s request is lost: its replica died without leaving.
    time.sleep(1.0)
    assert second.enter("alice") and not first.enter("alice")
    time.sleep(1.3)
    # The lost request's lease has ended; the key lives on for the other, which counts.
    assert first.enter("alice") and not second.enter("alice")


def test_a_lock_is_one_holder_at_a_time_and_never_freed_by_another(
        store: LimitsStore) -> None:
    """Two replicas' locks: the second waits while the first holds; the first's lock
    expires (its holder presumed dead) and the second gets it; the first, leaving late,
    frees nothing of the second's."""
    first = SharedLocks(store, ttl=1.0, wait=5)
    second = SharedLocks(store, ttl=30, wait=10)
    got, done = threading.Event(), threading.Event()

    def other() -> None:
        with second.hold("alice"):
            got.set()
            done.wait(30)

    waiter = threading.Thread(target=other)
    with first.hold("alice"):
        waiter.start()
        assert not got.wait(0.2)
        assert got.wait(10)
    try:
        assert store.call(lambda r: r.pttl(LOCK_KEY)) > 1000
        with pytest.raises(ServiceError) as busy, SharedLocks(store, wait=0.2).hold("alice"):
            pass
        assert busy.value.status == 429 and busy.value.kind == "create-busy"
    finally:
        done.set()
        waiter.join()
    assert store.call(lambda r: r.exists(LOCK_KEY)) == 0


LOCK_KEY = "streamify:test:creating:alice"


def test_an_unreachable_store_fails_fast_open_for_limits_and_closed_for_locks(
        redis_server: RedisServer, store: LimitsStore,
        caplog: pytest.LogCaptureFixture) -> None:
    limiter = SharedRateLimiter(store, rate=0.01, burst=1)
    in_flight = SharedInFlight(store, cap=1)
    assert limiter.take("alice") == 0 and in_flight.enter("alice")
    redis_server.stop()
    caplog.set_level(logging.INFO, LIMITS_LOGGER)
    began = time.monotonic()
    assert limiter.take("alice") == 0 and in_flight.enter("alice")
    in_flight.leave("alice")
    with pytest.raises(ServiceError) as refused, SharedLocks(store).hold("alice"):
        pass
    assert time.monotonic() - began < 1.0
    assert refused.value.status == 503 and refused.value.kind == "limits-store-unreachable"
    assert refused.value.headers == {"Retry-After": "5"}
    assert not store.ping()
    assert [r.getMessage() for r in caplog.records].count(
        '{"event":"limits-store-unreachable","error":"ConnectionError","effect":"rate and '
        'in-flight limits not enforced; new uploads refused (503) until the store '
        'answers"}') == 1
    redis_server.start()
    assert store.ping()
    # The bucket is new (the store kept nothing): the limits hold again at once.
    assert limiter.take("alice") == 0 and limiter.take("alice") > 0
    assert sum("limits-store-reachable" in r.getMessage() for r in caplog.records) == 1


def test_a_redis_url_must_name_redis_and_is_kept_secret(moto_bucket: Bucket) -> None:
    with pytest.raises(ValueError, match="redis_url must start with redis://"):
        service_settings(moto_bucket, redis_url="http://127.0.0.1:6379/0")
    settings = service_settings(moto_bucket, redis_url="redis://:hunter2-secret@127.0.0.1/0")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_a_silent_store_holds_up_one_call_not_every_call() -> None:
    """A store that accepts connections and never answers (a hung host): the first call
    waits out the timeout; the calls after it, over several retry intervals, do not wait,
    because the store is tried again by a thread of its own."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        store = LimitsStore(f"redis://127.0.0.1:{port}/0", namespace="streamify:test:",
                            timeout=0.3, retry_interval=0.1)
        limiter = SharedRateLimiter(store, rate=0.01, burst=1)
        began = time.monotonic()
        assert limiter.take("alice") == 0
        assert time.monotonic() - began >= 0.25
        waited = 0.0
        for _ in range(10):
            began = time.monotonic()
            assert limiter.take("alice") == 0
            waited += time.monotonic() - began
            time.sleep(0.1)
        store.close()
    assert waited < 0.1
