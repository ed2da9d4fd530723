"""Coalesce the part-signing requests of many workers into batch calls.

Workers ask for one URL each, as soon as they know their part's MD5. When signing costs a
round trip (the API service), requests are grouped: one call is in flight at a time, and
the requests that arrive while it is form the next call. A request that finds no call in
flight is signed at once, so a steady stream of parts pays no added wait; only the very
first call lingers briefly, since every worker reaches its first part at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from ._control import PartToSign, SignedPart
from ._errors import StreamifyError

__all__ = ["BatchSigner"]


class BatchSigner:
    """Signs parts for many worker threads, grouping their requests into batch calls.

    No thread of its own: the worker that finds no call in flight leads, signs one batch
    (its own part and whoever waits beside it), then hands the lead to a worker still
    waiting, if any.
    """

    def __init__(self, sign: Callable[[Sequence[PartToSign]], list[SignedPart]], *,
                 linger: float, max_batch: int = 100) -> None:
        self._sign = sign
        self._linger = linger
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: list[tuple[PartToSign, Future[SignedPart]]] = []
        self._leading = False
        self.calls = 0

    def sign(self, part: PartToSign) -> SignedPart:
        if self._linger <= 0:
            with self._lock:
                self.calls += 1
            return _matched([part], self._sign([part]))[0]
        future: Future[SignedPart] = Future()
        with self._lock:
            self._pending.append((part, future))
            self._changed.notify_all()
        while True:
            with self._lock:
                self._changed.wait_for(lambda: future.done() or not self._leading)
                if future.done():
                    return future.result()
                self._leading = True
                batch = self._next_batch()
            try:
                self._sign_batch(batch)
            finally:
                with self._lock:
                    self._leading = False
                    self._changed.notify_all()

    def _next_batch(self) -> list[tuple[PartToSign, Future[SignedPart]]]:
        """Take the next batch (called with the lock held). The very first call lingers:
        every worker reaches its first part at once."""
        if self.calls == 0:
            self._changed.wait_for(lambda: len(self._pending) >= self._max_batch,
                                   timeout=self._linger)
        batch = self._pending[: self._max_batch]
        self._pending = self._pending[self._max_batch :]
        self.calls += 1
        return batch

    def _sign_batch(self, batch: list[tuple[PartToSign, Future[SignedPart]]]) -> None:
        try:
            signed = _matched([part for part, _ in batch],
                              self._sign([part for part, _ in batch]))
        except BaseException as exc:
            # Every waiter learns of the failure; none is left hanging.
            for _, future in batch:
                future.set_exception(exc)
        else:
            for (_, future), url in zip(batch, signed, strict=True):
                future.set_result(url)


def _matched(parts: Sequence[PartToSign], signed: list[SignedPart]) -> list[SignedPart]:
    """``signed``, checked to answer ``parts`` one for one, in order."""
    if [s.number for s in signed] != [p.number for p in parts]:
        raise StreamifyError(
            f"the control plane answered {len(signed)} signed URLs (parts "
            f"{[s.number for s in signed]}) for {len(parts)} parts "
            f"({[p.number for p in parts]}); the service or its proxy is broken: "
            "rerun the same command to resume")
    return signed
