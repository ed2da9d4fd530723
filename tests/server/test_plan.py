"""``GET /v1/plan``: the core's part plan, for clients that need it before they create the
upload (the upload page), so that no client cuts files by a rule of its own."""

from __future__ import annotations

import math

from streamify import plan_parts

from tests.server._support import assert_problem
from tests.server.conftest import TOKENS, Api, GiB, MiB


def test_the_plan_is_the_cores_and_the_same_as_creating_the_upload_answers(api: Api) -> None:
    bob = api.client("bob")
    preferred = api.settings.part_size
    for size in (0, MiB, 200 * MiB, 100 * GiB, 5 * 1024 * GiB):
        answer = bob.get("/v1/plan", params={"size": size})
        assert answer.status_code == 200, answer.text
        plan = plan_parts(size, preferred)
        assert answer.json() == {"size": size, "part_size": plan.part_size,
                                 "parts": plan.count}
    # A file too large for 10,000 parts of the preferred size gets larger parts, in whole
    # MiB: a rule of the page's own (size / 10,000) cut it differently.
    grown = bob.get("/v1/plan", params={"size": 100 * GiB}).json()
    assert grown["part_size"] == 11 * MiB and grown["parts"] <= 10_000
    assert grown["part_size"] != math.ceil(100 * GiB / 10_000)
    assert bob.get("/v1/plan", params={"size": MiB}).json()["parts"] == 1

    alice = api.client("alice")
    created = alice.post("/v1/uploads", json={"key": api.key("alice", "p.bin"),
                                              "size": 200 * MiB})
    assert created.status_code == 200, created.text
    body = created.json()
    try:
        planned = alice.get("/v1/plan", params={"size": 200 * MiB}).json()
        assert (planned["part_size"], planned["parts"]) == (body["part_size"], body["parts"])
    finally:
        alice.delete(f"/v1/uploads/{body['upload_id']}", params={"key": body["key"]})


def test_the_plan_answers_a_pages_session_and_checks_the_size(api: Api) -> None:
    browser = api.client(None)
    assert_problem(browser.get("/v1/plan", params={"size": MiB}), 401)
    signed_in = browser.post("/v1/session",
                             headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert signed_in.status_code == 204, signed_in.text
    answer = browser.get("/v1/plan", params={"size": 24 * MiB})
    assert answer.status_code == 200, answer.text
    assert answer.json()["parts"] == 3
    # Over the caller's limit (alice: 1 GiB), or not a size at all.
    assert_problem(browser.get("/v1/plan", params={"size": GiB + 1}), 400, "object-too-large")
    assert_problem(browser.get("/v1/plan", params={"size": str(10**400)}), 400,
                   "object-too-large")
    assert_problem(browser.get("/v1/plan", params={"size": -1}), 422)
    assert_problem(browser.get("/v1/plan"), 422)
