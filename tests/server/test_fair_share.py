"""Fair share: one principal flooding expensive calls (listings of a large prefix, creates)
does not make another principal wait, because each principal has a few requests in flight
at most and a listing page reads at most one page of S3 keys."""

from __future__ import annotations

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
from tests.wireproxy import WireProxy

WORKER_THREADS = 40
"""The service's worker threads (AnyIO's default), which ``def`` routes run on."""
ALICE_CALLS = 60
"""More than the service's worker threads: without a cap, alice alone takes them all."""


def _is_listing(method: str, target: str) -> bool:
    return method == "GET" and "list-type=2" in target


def test_another_principal_is_served_while_one_has_every_call_stuck_in_storage(
        moto_bucket: Bucket) -> None:
    """Alice's listings hang in storage (a proxy holds them) and she sends more than the
    service has threads: only ``max_in_flight`` of hers are let in, the rest are refused at
    once with 429, and bob is answered meanwhile. No timing: without the cap bob's call
    would wait for as long as storage holds alice's (here: until the test gives up)."""
    proxy = WireProxy(moto_bucket.endpoint)
    behind_proxy = Bucket(proxy.url, moto_bucket.name, moto_bucket.client)
    try:
        with running_api(behind_proxy, rate_limit=10_000, rate_burst=10_000) as api:
            cap = api.settings.max_in_flight
            proxy.hold_requests(match=_is_listing)
            alice = api.client("alice")
            with ThreadPoolExecutor(ALICE_CALLS) as pool:
                calls = [pool.submit(alice.get, "/v1/objects") for _ in range(ALICE_CALLS)]
                try:
                    _wait_until(lambda: proxy.held >= cap
                                and sum(c.done() for c in calls) >= ALICE_CALLS - cap)
                    # A call that needs a worker thread and storage, as alice's do.
                    answer = api.client("bob").get("/v1/uploads")
                    assert answer.status_code == 200, answer.text
                    held = proxy.held
                finally:
                    proxy.release()
                statuses = [c.result().status_code for c in calls]
    finally:
        proxy.close()
    assert held == cap
    assert statuses.count(200) == cap and statuses.count(429) == ALICE_CALLS - cap


def test_calls_without_storage_need_no_worker_thread(moto_bucket: Bucket) -> None:
    """With the cap lifted, alice's stuck listings take every worker thread; bob's calls
    that never reach storage (his limits, a part plan) are still answered, because they
    run on the event loop. Red if such a route is a plain ``def``: it waits for a thread
    until the test gives up."""
    proxy = WireProxy(moto_bucket.endpoint)
    behind_proxy = Bucket(proxy.url, moto_bucket.name, moto_bucket.client)
    try:
        with running_api(behind_proxy, rate_limit=10_000, rate_burst=10_000,
                         max_in_flight=10_000) as api:
            proxy.hold_requests(match=_is_listing)
            alice = api.client("alice")
            with ThreadPoolExecutor(ALICE_CALLS) as pool:
                calls = [pool.submit(alice.get, "/v1/objects") for _ in range(ALICE_CALLS)]
                try:
                    _wait_until(lambda: proxy.held >= WORKER_THREADS)
                    bob = api.client("bob")
                    assert bob.get("/v1/limits").status_code == 200
                    assert bob.get("/v1/plan", params={"size": 10}).status_code == 200
                finally:
                    proxy.release()
                assert all(c.result().status_code == 200 for c in calls)
    finally:
        proxy.close()


def test_a_listing_over_the_rate_limit_is_refused_without_a_worker_thread(
        moto_bucket: Bucket) -> None:
    """Alice's stuck listings take every worker thread; bob, out of tokens, asks for a
    1,000-key page and is refused at once, on the event loop. Red if the listing is
    charged inside its ``def`` route: the refusal waits for a thread until the test gives
    up."""
    proxy = WireProxy(moto_bucket.endpoint)
    behind_proxy = Bucket(proxy.url, moto_bucket.name, moto_bucket.client)
    try:
        with running_api(behind_proxy, rate_limit=0.01, rate_burst=2 * ALICE_CALLS,
                         max_in_flight=10_000) as api:
            bob = api.client("bob")
            while bob.get("/v1/limits").status_code == 200:
                pass  # bob spends his tokens
            proxy.hold_requests(match=_is_listing)
            alice = api.client("alice")
            with ThreadPoolExecutor(ALICE_CALLS) as pool:
                calls = [pool.submit(alice.get, "/v1/objects") for _ in range(ALICE_CALLS)]
                try:
                    _wait_until(lambda: proxy.held >= WORKER_THREADS)
                    refused = httpx.get(f"{api.url}/v1/objects", params={"limit": 1000},
                                        headers={"Authorization": f"Bearer {TOKENS['bob']}"},
                                        timeout=10)
                finally:
                    proxy.release()
                assert all(c.result().status_code == 200 for c in calls)
    finally:
        proxy.close()
    assert_problem(refused, 429, "rate-limited")


def _is_uploads_listing(method: str, target: str) -> bool:
    return method == "GET" and "?uploads" in target


def test_a_sign_call_of_a_known_upload_does_not_wait_for_a_signing_thread(
        moto_bucket: Bucket) -> None:
    """Alice's sign calls for uploads the service has not seen yet wait in storage (their
    ownership check is held by a proxy) and take both signing threads; bob signs a part of
    an upload he signed for a moment ago and is answered at once, on the event loop. Red
    if every sign call goes to a signing thread: bob's waits until the test gives up."""
    proxy = WireProxy(moto_bucket.endpoint)
    behind_proxy = Bucket(proxy.url, moto_bucket.name, moto_bucket.client)
    try:
        with running_api(behind_proxy, sign_concurrency=2, rate_limit=10_000,
                         rate_burst=10_000, max_in_flight=10_000) as api:
            bob = api.client("bob")
            upload = bob.post("/v1/uploads", json={"filename": "b.bin", "size": 10}).json()
            sign = {"key": upload["key"], "parts": [{"number": 1}]}
            url = f"/v1/uploads/{upload['upload_id']}/sign"
            assert bob.post(url, json=sign).status_code == 200  # ownership now known
            alice = api.client("alice")
            started = [alice.post("/v1/uploads", json={"filename": f"{n}.bin", "size": 10}
                                  ).json() for n in range(2)]
            api.app.state.service._owned.clear()  # alice's uploads: not checked yet
            assert bob.post(url, json=sign).status_code == 200  # bob's checked again
            proxy.hold_requests(match=_is_uploads_listing)
            with ThreadPoolExecutor(2) as pool:
                stuck = [pool.submit(alice.post, f"/v1/uploads/{a['upload_id']}/sign",
                                     json={"key": a["key"], "parts": [{"number": 1}]})
                         for a in started]
                try:
                    _wait_until(lambda: proxy.held >= 2)
                    answer = httpx.post(f"{api.url}{url}", json=sign, timeout=10,
                                        headers={"Authorization": f"Bearer {TOKENS['bob']}"})
                finally:
                    proxy.release()
                assert all(s.result().status_code == 200 for s in stuck)
    finally:
        proxy.close()
    assert answer.status_code == 200 and answer.json()["parts"][0]["url"]


def _store_many(bucket: Bucket, prefix: str, count: int) -> None:
    def store(number: int) -> None:
        bucket.client.put_object(Bucket=bucket.name, Key=f"{prefix}clip-{number:05d}.mp4",
                                 Body=b"")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store, range(count)))


def _wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "alice's calls never settled"
        time.sleep(0.05)


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
