"""Finding the upload: what S3 holds for a destination beside the resume state (the facts),
and the pure decision on them, with the source ranges it asks for hashed (``Verifying``).

No decision is made here: ``_resume.decide`` makes it. This module only asks S3 and reads
the source.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from . import _events as ev
from ._checksum import additional_checksum
from ._config import UploadConfig
from ._control import ControlPlane, ObjectInfo
from ._destination import Destination
from ._errors import UploadGoneError
from ._resume import (
    AlreadyComplete,
    ByteRange,
    Create,
    NeedHashes,
    RangeHashes,
    Refuse,
    Resume,
    ResumeFacts,
    decide,
)
from ._sending import Flow
from ._snapshot import PrefixSnapshot
from ._source import Fingerprint, Source
from ._state import ResumeState

__all__ = ["UploadFinder"]


@dataclass(frozen=True)
class UploadFinder:
    """Finds and decides the upload of ``source`` to ``destination``."""

    control: ControlPlane
    destination: Destination
    source: Source
    config: UploadConfig
    flow: Flow
    subscribers: ev.Subscribers
    snapshot: PrefixSnapshot | None = None

    def gather(self, fingerprint: Fingerprint, state: ResumeState | None, *,
               one_put: bool) -> ResumeFacts:
        """Ask S3 what it holds for this destination beside the ``state``."""
        control, destination = self.control, self.destination
        facts = ResumeFacts(source_name=self.source.name, destination=destination,
                            fingerprint=fingerprint, config=self.config, state=state)
        if state is not None:
            try:
                listed = control.list_parts(destination, state.upload_id)
            except UploadGoneError:
                return replace(facts, upload_id=state.upload_id,
                               existing=control.head(destination))
            return replace(facts, upload_id=state.upload_id, listed=listed)
        if not one_put:
            # Sent as one PUT, a source never has a multipart upload of its own to resume
            # (one left by another kind of run is `streamify gc`'s to clear).
            for upload in reversed(control.list_uploads(destination)):
                if upload.destination.key != destination.key:
                    continue
                try:
                    listed = control.list_parts(destination, upload.upload_id)
                except UploadGoneError:
                    continue
                return replace(facts, upload_id=upload.upload_id, listed=listed)
        if self.config.if_exists == "overwrite":
            return facts
        return replace(facts, existing=self._existing())

    def _existing(self) -> ObjectInfo | None:
        """The object at the destination now: from the command's listing of the prefix
        where it has one (``skip_identical`` only), else one HEAD."""
        snapshot = self.snapshot
        if (snapshot is not None and self.config.if_exists == "skip_identical"
                and snapshot.covers(self.destination)):
            return snapshot.get(self.destination)
        return self.control.head(self.destination)

    def decide(self, facts: ResumeFacts) -> Create | Resume | AlreadyComplete | Refuse:
        """Call the pure decision, hashing the source ranges it asks for."""
        while True:
            decision = decide(facts)
            if not isinstance(decision, NeedHashes):
                return decision
            facts = replace(facts, hashes={**facts.hashes, **self._hash(decision)})

    def _hash(self, need: NeedHashes) -> dict[ByteRange, RangeHashes]:
        lock = threading.Lock()
        checked = [0]
        emit = self.subscribers.emit
        emit(ev.Verifying(0, need.size))

        def one(byte_range: ByteRange) -> RangeHashes:
            self.flow.check()
            data = self.source.read(*byte_range)
            hashes = RangeHashes(hashlib.md5(data, usedforsecurity=False).hexdigest(),
                                 additional_checksum(need.checksum, data))
            with lock:
                checked[0] += len(data)
                done = checked[0]
            emit(ev.Verifying(done, need.size))
            return hashes

        pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="streamify-verify")
        try:
            futures = [pool.submit(one, r) for r in need.ranges]
            return {r: f.result() for r, f in zip(need.ranges, futures, strict=True)}
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
