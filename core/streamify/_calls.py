"""Control calls that ride out an outage: every call to S3 or the API service, retried
under the upload's budget.

The control planes make one attempt per call and say, through ``_retry``'s classifier,
whether a failure is worth retrying (a transient ``EndpointError``). This wrapper is the
one loop that retries them, with the same budget as the part PUTs (``UploadConfig``:
attempts, backoff with full jitter, ``Retry-After``, time). The engine, the stream writer
and the batch runner talk to storage only through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from . import _events as ev
from ._config import UploadConfig
from ._control import (
    ControlPlane,
    ListedObject,
    ObjectInfo,
    ObjectLister,
    ObjectSigner,
    OpenUpload,
    PartToSign,
    SignedPart,
    UploadedPart,
)
from ._destination import Destination
from ._errors import EndpointError, StreamifyError
from ._sending import Flow

__all__ = ["Abilities", "RetryingControlPlane", "may_have_arrived", "retrying"]

T = TypeVar("T")

# Answers that say the request was refused before it did anything: even starting an
# upload (not safe to repeat once it may have arrived) is tried again after them.
_REFUSED_UNDONE = frozenset({429, 502, 503, 504})


def may_have_arrived(error: EndpointError) -> bool:
    """Whether the request that failed with ``error`` may have done its work in storage
    (a connection was made and no answer said it was refused undone)."""
    return error.connected and error.status not in _REFUSED_UNDONE


@dataclass(frozen=True)
class Abilities:
    """What a control plane can do beyond ``ControlPlane``: asked once per control plane,
    not per file (an isinstance of a runtime protocol inspects each of its members, and
    every file of a batch wraps the command's control plane anew)."""

    object_signer: ObjectSigner | None
    lists_objects: bool

    @classmethod
    def of(cls, control: ControlPlane) -> Abilities:
        return cls(control if isinstance(control, ObjectSigner) else None,
                   isinstance(control, ObjectLister))


class RetryingControlPlane:
    """``control`` with each call retried under ``config``'s budget.

    ``flow`` (pause, cancel, the deadline) may cut a wait between attempts short: the call
    then raises ``Stopped``. Events (``Retrying`` with part number 0) go to
    ``subscribers``. Closing it closes nothing: whoever made ``control`` closes it.
    """

    def __init__(self, control: ControlPlane, config: UploadConfig, *,
                 flow: Flow | None = None, subscribers: ev.Subscribers | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None,
                 abilities: Abilities | None = None) -> None:
        """``abilities``: what ``control`` can do, when already known (``retrying``)."""
        self.inner = control
        self.sign_linger = control.sign_linger
        self.abilities = abilities or Abilities.of(control)
        self._config = config
        self._flow = flow
        self._subscribers = subscribers
        self._clock = clock
        self._sleep = sleep or (flow.sleep if flow is not None else time.sleep)
        self._reached = False

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @property
    def principal(self) -> str:
        return str(getattr(self.inner, "principal", ""))

    @property
    def api_url(self) -> str | None:
        url = getattr(self.inner, "api_url", None)
        return None if url is None else str(url)

    @property
    def signs_objects(self) -> bool:
        """Whether the control plane can presign a whole-object PUT (``ObjectSigner``)."""
        return self.abilities.object_signer is not None

    @property
    def lists_objects(self) -> bool:
        """Whether the control plane can list completed objects (``ObjectLister``)."""
        return self.abilities.lists_objects

    def call(self, doing: str, attempt: Callable[[], T], *, repeatable: bool = True,
             stoppable: bool = True) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the budget is spent.

        ``repeatable=False`` (starting an upload) retries only failures that surely left
        nothing behind: no connection made, or a 429/502/503/504 answer.
        ``stoppable=False`` (aborting) is not cut short by a pause or cancel."""
        budget = self._config.retry_budget()
        while True:
            try:
                result = attempt()
            except EndpointError as exc:
                if exc.connected:
                    self._reached = True
                if not exc.transient or not (repeatable or not may_have_arrived(exc)):
                    raise
                delay = budget.next_delay(self._clock(), retry_after=exc.retry_after,
                                          connected=exc.connected, reached=self._reached)
                if delay is None:
                    raise _spent(exc, budget.attempts,
                                 self._clock() - (budget.first_failure or 0.0)) from exc
                if self._subscribers is not None:
                    self._subscribers.emit(ev.Retrying(0, budget.attempts, delay, str(exc),
                                                       call=doing))
                self._sleep(delay)
                if stoppable and self._flow is not None:
                    self._flow.check()
                continue
            except StreamifyError:
                self._reached = True
                raise
            self._reached = True
            return result

    # ------------------------------------------------------------------ ControlPlane
    def create_upload(self, destination: Destination, *, content_type: str,
                      metadata: Mapping[str, str], checksum: str,
                      size: int | None = None) -> str:
        return self.call(f"starting upload to {destination}", lambda: self.inner.create_upload(
            destination, content_type=content_type, metadata=metadata, checksum=checksum,
            size=size), repeatable=False)

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        return self.call(f"signing parts of {destination}", lambda: self.inner.sign_parts(
            destination, upload_id, parts, expires_in=expires_in))

    def sign_object(self, destination: Destination, part: PartToSign, *, content_type: str,
                    metadata: Mapping[str, str], expires_in: int) -> SignedPart:
        signer = self.abilities.object_signer
        if signer is None:
            raise TypeError(f"{self.inner!r} cannot sign a whole-object PUT")
        return self.call(f"signing the upload of {destination}", lambda: signer.sign_object(
            destination, part, content_type=content_type, metadata=metadata,
            expires_in=expires_in))

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        return self.call(f"listing parts of {destination}",
                         lambda: self.inner.list_parts(destination, upload_id))

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        return self.call(f"listing open uploads in {destination}",
                         lambda: self.inner.list_uploads(destination))

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        # Safe to repeat: a completion whose answer was lost reads as the upload gone,
        # which ``complete_upload`` recognises by the object it left.
        return self.call(f"completing upload to {destination}",
                         lambda: self.inner.complete(destination, upload_id, parts))

    def abort(self, destination: Destination, upload_id: str) -> None:
        self.call(f"aborting upload to {destination}",
                  lambda: self.inner.abort(destination, upload_id), stoppable=False)

    def head(self, destination: Destination) -> ObjectInfo | None:
        return self.call(f"reading {destination}", lambda: self.inner.head(destination))

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        """The listing, each page retried: after a failure the listing starts again and
        skips what it already gave (a listing's order is stable between two reads)."""
        lister = self.inner
        if not isinstance(lister, ObjectLister):
            raise StreamifyError(f"listing objects in {prefix}: {lister!r} cannot list")
        given = 0
        pages: Iterator[ListedObject] | None = None

        def next_item() -> ListedObject | None:
            nonlocal pages
            try:
                if pages is None:
                    pages = lister.list_objects(prefix, page_size=page_size)
                    for _ in range(given):
                        next(pages)
                return next(pages)
            except StopIteration:
                return None
            except EndpointError:
                pages = None
                raise

        while (item := self.call(f"listing objects in {prefix}", next_item)) is not None:
            given += 1
            yield item

    def close(self) -> None:
        """Nothing to release: the wrapped control plane belongs to its maker."""


def retrying(control: ControlPlane, config: UploadConfig, *, flow: Flow | None = None,
             subscribers: ev.Subscribers | None = None) -> RetryingControlPlane:
    """``control`` with its calls retried under ``config``'s budget (never wrapped twice:
    an already retrying control plane gets the new budget around its inner one)."""
    if isinstance(control, RetryingControlPlane):
        return RetryingControlPlane(control.inner, config, flow=flow, subscribers=subscribers,
                                    abilities=control.abilities)
    return RetryingControlPlane(control, config, flow=flow, subscribers=subscribers)


def _spent(last: EndpointError, attempts: int, seconds: float) -> EndpointError:
    return EndpointError(f"{last} (tried {attempts} times over {seconds:.0f} s)",
                         transient=True, status=last.status, retry_after=last.retry_after,
                         connected=last.connected)
