"""Many processes (Airflow workers) share one state location: no spurious failure, no
lost or torn write. Real processes, real files; no servers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from streamify import Destination, Fingerprint, ResumeState, StateStore

WORKERS = 4
ROUNDS = 40


def _state(key: str, upload_id: str) -> ResumeState:
    return ResumeState(endpoint="http://s3", destination=Destination("bucket", key),
                       upload_id=upload_id, part_size=8 << 20, source=f"/videos/{key}",
                       fingerprint=Fingerprint(size=1, version="1", edges_sha256="e"))


def _hammer(location: str, worker: int) -> list[str]:
    """One worker: check the store, save its own state and a shared one, read both back."""
    store = StateStore(location)
    problems: list[str] = []
    own = Destination("bucket", f"own-{worker}")
    shared = Destination("bucket", "shared")
    for round_ in range(ROUNDS):
        try:
            store.ensure_writable()
            store.save(_state(own.key, f"{worker}-{round_}"))
            store.save(_state(shared.key, f"{worker}-{round_}"))
            mine = store.load("http://s3", own)
            if mine is None or mine.upload_id != f"{worker}-{round_}":
                problems.append(f"round {round_}: own state lost ({mine})")
            if store.load("http://s3", shared) is None:
                problems.append(f"round {round_}: shared state torn or missing")
            store.all()
        except Exception as exc:  # every failure is a finding, whatever its type
            problems.append(f"round {round_}: {type(exc).__name__}: {exc}")
    return problems


@pytest.mark.parametrize("scheme", ["", "file://", "local://"])
def test_processes_sharing_a_state_location_never_fail_or_lose_a_write(
        tmp_path: Path, scheme: str) -> None:
    # "" and file:// are written with temp files and rename; local:// goes through fsspec.
    location = f"{scheme}{tmp_path / 'state'}"
    # Spawned, not forked: the test process has threads (a shared browser's driver, proxies),
    # and a forked child can inherit a held lock and hang, keeping their pipes open.
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        results = pool.starmap_async(_hammer, [(location, w) for w in range(WORKERS)]).get(
            timeout=300)
    assert [p for problems in results for p in problems] == []
    store = StateStore(location)
    assert sorted(s.upload_id for s in store.all() if s.destination.key != "shared") == [
        f"{w}-{ROUNDS - 1}" for w in range(WORKERS)]
    left = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert all(not name.startswith(".") for name in left), left  # no probe or temp file left
