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
    def __init__(self, sign: Callable[[Sequence[PartToSign]], list[SignedPart]], *,
                 linger: float, max_batch: int = 100) -> None:
        self._sign = sign
        self._linger = linger
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: list[tuple[PartToSign, Future[SignedPart]]] = []
        self._leader = False
        self.calls = 0

    def sign(self, part: PartToSign) -> SignedPart:
        if self._linger <= 0:
            self.calls += 1
            return _matched([part], self._sign([part]))[0]
        future: Future[SignedPart] = Future()
        with self._lock:
            self._pending.append((part, future))
            self._arrived.notify_all()
            lead = not self._leader
            if lead:
                self._leader = True
        if lead:
            self._lead()
        return future.result()

    def _lead(self) -> None:
        """Sign one batch; whoever arrived meanwhile gets the next leader."""
        with self._lock:
            if self.calls == 0:  # the first parts of every worker come together
                self._arrived.wait_for(lambda: len(self._pending) >= self._max_batch,
                                       timeout=self._linger)
            batch = self._pending[: self._max_batch]
            self._pending = self._pending[self._max_batch :]
            self.calls += 1
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
        finally:
            with self._lock:
                # Those who arrived during the call need a leader (this thread goes on
                # to send its own part).
                self._leader = bool(self._pending)
                if self._leader:
                    threading.Thread(target=self._lead, daemon=True).start()


def _matched(parts: Sequence[PartToSign], signed: list[SignedPart]) -> list[SignedPart]:
    """``signed``, checked to answer ``parts`` one for one, in order."""
    if [s.number for s in signed] != [p.number for p in parts]:
        raise StreamifyError(
            f"the control plane answered {len(signed)} signed URLs (parts "
            f"{[s.number for s in signed]}) for {len(parts)} parts "
            f"({[p.number for p in parts]}); the service or its proxy is broken: "
            "rerun the same command to resume")
    return signed
