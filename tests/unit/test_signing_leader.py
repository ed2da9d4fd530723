"""The batch signer signs with the workers' own threads: no thread of its own per batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from streamify._control import PartToSign, SignedPart
from streamify._signing import BatchSigner


def test_batches_are_signed_by_the_waiting_workers_without_new_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
        time.sleep(0.05)  # a round trip: requests pile up behind it
        return [SignedPart(p.number, f"https://s3/{p.number}") for p in parts]

    signer = BatchSigner(sign, linger=0.01, max_batch=3)
    go = threading.Barrier(9)
    urls: dict[int, str] = {}

    def worker(number: int) -> None:
        go.wait()
        urls[number] = signer.sign(PartToSign(number)).url

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
    for thread in workers:
        thread.start()
    started: list[object] = []

    class Recorded(threading.Thread):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Thread", Recorded)
    go.wait()
    for thread in workers:
        thread.join(10)
    assert urls == {n: f"https://s3/{n}" for n in range(1, 9)}
    assert signer.calls >= 3  # at most three a call: several leaders took turns
    assert started == []
