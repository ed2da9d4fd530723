"""Fair share: one principal flooding expensive calls (listings of a large prefix, creates)
does not make another principal wait, because each principal has a few requests in flight
at most and a listing page reads at most one page of S3 keys."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from streamify import S3ControlPlane
from streamify.server import create_app, serve_in_thread

from tests.conftest import Bucket
from tests.server._support import assert_problem
from tests.server.conftest import TOKENS, running_api, service_settings

OBJECTS = 1500
LISTERS = 50
CREATORS = 90
FLOOD_SECONDS = 6.0


def _store_many(bucket: Bucket, prefix: str, count: int) -> None:
    def store(number: int) -> None:
        bucket.client.put_object(Bucket=bucket.name, Key=f"{prefix}clip-{number:05d}.mp4",
                                 Body=b"")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store, range(count)))


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


def _flood(url: str, calls: int, call: Callable[[httpx.Client], httpx.Response],
           stop: threading.Event) -> list[threading.Thread]:
    """``calls`` threads of alice calling back to back until ``stop``; after a 429 a
    thread waits as ``Retry-After`` says, as every client of the service does."""
    def run() -> None:
        with httpx.Client(base_url=url, timeout=120, headers={
                "Authorization": f"Bearer {TOKENS['alice']}"}) as client:
            while not stop.is_set():
                try:
                    answer = call(client)
                except httpx.HTTPError:
                    continue
                if answer.status_code == 429:
                    stop.wait(float(answer.headers["Retry-After"]))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(calls)]
    for thread in threads:
        thread.start()
    return threads


def test_another_principal_answers_quickly_while_one_floods_listings_and_creates(
        moto_bucket: Bucket) -> None:
    _store_many(moto_bucket, "users/alice/", OBJECTS)
    with running_api(moto_bucket, max_open_uploads=100_000) as api:
        bob = api.client("bob")
        stop = threading.Event()
        created = iter(range(10**9))
        flood: list[threading.Thread] = []
        try:
            flood += _flood(api.url, LISTERS, lambda c: c.get("/v1/objects",
                                                              params={"limit": 1000}), stop)
            flood += _flood(api.url, CREATORS, lambda c: c.post("/v1/uploads", json={
                "key": f"users/alice/new-{next(created)}.mp4", "size": 1}), stop)
            time.sleep(1.0)  # the flood is under way
            waits: list[float] = []
            deadline = time.monotonic() + FLOOD_SECONDS
            while time.monotonic() < deadline:
                started = time.perf_counter()
                answer = bob.get("/v1/limits")
                waits.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
                time.sleep(0.02)
        finally:
            stop.set()
            for thread in flood:
                thread.join(120)
    assert _p99(waits) < 2.0, (f"bob's p99 was {_p99(waits):.2f} s over {len(waits)} calls "
                               f"while alice flooded")


def test_a_principal_over_its_requests_in_flight_gets_429_with_retry_after(
        moto_bucket: Bucket) -> None:
    _store_many(moto_bucket, "users/alice/", 300)
    with running_api(moto_bucket, max_in_flight=2, rate_limit=10_000,
                     rate_burst=10_000) as api:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(
                lambda _: api.client("alice").get("/v1/objects", params={"limit": 1000}),
                range(12)))
        statuses = sorted(a.status_code for a in answers)
        assert 200 in statuses and 429 in statuses, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert_problem(refused, 429, "too-many-in-flight")
        assert int(refused.headers["Retry-After"]) >= 1
        # The cap is alice's alone, and it is given back: later calls pass.
        assert api.client("bob").get("/v1/limits").status_code == 200
        assert api.client("alice").get("/v1/limits").status_code == 200


def test_a_listing_costs_more_the_more_keys_it_may_read(moto_bucket: Bucket) -> None:
    with running_api(moto_bucket, rate_limit=0.01, rate_burst=30) as api:
        alice = api.client("alice")
        # A page of up to 1,000 keys costs 11 tokens (one, and one per 100 keys).
        assert alice.get("/v1/objects", params={"limit": 1000}).status_code == 200
        assert alice.get("/v1/objects", params={"limit": 1000}).status_code == 200
        assert_problem(alice.get("/v1/objects", params={"limit": 1000}), 429, "rate-limited")
        # A small page is cheap: 8 tokens are left, a page of 50 costs 2.
        for _ in range(4):
            assert alice.get("/v1/objects", params={"limit": 50}).status_code == 200


def test_a_listing_page_is_one_s3_read_whatever_the_prefix_holds(moto_bucket: Bucket) -> None:
    _store_many(moto_bucket, "users/alice/", 1200)
    control = S3ControlPlane(endpoint_url=moto_bucket.endpoint, region="us-east-1")
    reads: list[dict[str, Any]] = []
    control.client.meta.events.register("before-call.s3.ListObjectsV2",
                                        lambda params, **_: reads.append(params))
    settings = service_settings(moto_bucket)
    with serve_in_thread(create_app(settings, control=control)) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as alice:
        first = alice.get("/v1/objects", params={"limit": 50}).json()
        assert len(first["objects"]) == 50 and len(reads) == 1
        second = alice.get("/v1/objects", params={"limit": 50, "cursor": first["next_cursor"]})
        assert second.json()["objects"][0]["key"] == "users/alice/clip-00050.mp4"
        assert len(reads) == 2
