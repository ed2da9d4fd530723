"""The upload engine: find or start the upload, send what is missing, complete, verify.

S3 is the truth. The local state only says which upload id to look at; every run asks S3
which parts it holds (the facts), lets ``_resume.decide`` say what to do with them, checks
the parts it keeps against the source, sends the rest through a fixed pool of workers (at
most ``concurrency`` parts in memory), then completes and verifies.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Literal

from . import _events as ev
from ._calls import retrying
from ._completion import complete_upload
from ._config import UploadConfig
from ._control import (
    ControlPlane,
    PartToSign,
    SignedPart,
)
from ._destination import Destination
from ._errors import (
    IntegrityError,
    SourceChangedError,
    StateStoreError,
    StreamifyError,
    TransferError,
    UploadCancelledError,
    UploadGoneError,
)
from ._finding import UploadFinder
from ._plan import Part, PartPlan, plan_parts
from ._result import UploadResult
from ._resume import AlreadyComplete, Create, Refuse, Resume, ResumeFacts
from ._sending import Flow, PartSending, Stopped, Tally, new_sender, send_all
from ._snapshot import PrefixSnapshot
from ._source import Fingerprint, LocalFileSource, Source, open_source
from ._state import ResumeState, StateStore
from ._transport import PartSender

__all__ = ["UploadResult", "Uploader", "complete_upload"]

_log = logging.getLogger("streamify")


class Uploader:
    """Uploads one source to one destination, resumably. ``run()`` may be called again
    after a pause or a failure: it picks up where S3 says the upload stands.

    Subscribe to events with ``subscribe``; ``pause`` and ``cancel`` may be called from any
    thread, also while the parts S3 holds are being verified (a part in flight finishes
    first). Use it as a context manager, or call ``close()``, to release its connections.
    """

    def __init__(self, source: Source | str | os.PathLike[str], destination: Destination | str,
                 *, control: ControlPlane, config: UploadConfig | None = None,
                 state: StateStore | None = None, sender: PartSender | None = None,
                 metadata: dict[str, str] | None = None,
                 snapshot: PrefixSnapshot | None = None) -> None:
        # Everything that can be refused is checked before anything is opened.
        self.destination = (destination if isinstance(destination, Destination)
                            else Destination.parse(destination))
        self.config = config or UploadConfig()
        self.control = control
        self.state = state or StateStore()
        self.metadata = metadata or {}
        self._subscribers = ev.Subscribers()
        self._flow = Flow()
        # Every call to storage or the API service rides out outages under the budget.
        self._control = retrying(control, self.config, flow=self._flow,
                                 subscribers=self._subscribers)
        # Only what is opened here is closed here: a Source or a sender passed in belongs
        # to the caller (a sender may serve other uploads too).
        self._own_source = isinstance(source, str | os.PathLike)
        self.source = open_source(source)
        self._finder = UploadFinder(self._control, self.destination, self.source, self.config,
                                    self._flow, self._subscribers, snapshot)
        self._own_sender = sender is None
        self._sender = sender or new_sender(self.config, control)
        self._closed = False

    # ------------------------------------------------------------------ control surface
    def subscribe(self, callback: ev.Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes.

        A callback that raises is logged and does not stop the upload."""
        return self._subscribers.add(callback)

    def pause(self) -> None:
        """Stop after the parts in flight; the upload stays open and ``run()`` resumes it."""
        self._flow.pause()

    def cancel(self) -> None:
        """Stop and abort the multipart upload; ``run()`` raises ``UploadCancelledError``.

        Called before ``run()``, the run aborts the open upload it finds (if any) and sends
        nothing. A cancelled uploader stays cancelled."""
        self._flow.cancel()

    # ------------------------------------------------------------------ the run
    def run(self) -> UploadResult:
        """Upload (or resume) until completed, paused, cancelled or failed."""
        self._flow.start(self.config.deadline)
        started = time.monotonic()
        try:
            return self._run(started)
        except Stopped as stop:
            # A wait between attempts of a control call not covered above was cut short.
            error: StreamifyError = TransferError(
                f"upload of {self.source.name} to {self.destination} stopped ({stop}) while "
                "waiting for storage to answer; rerun to resume")
            self._subscribers.emit(ev.Failed(error))
            raise error from None
        except StreamifyError as exc:
            self._subscribers.emit(ev.Failed(exc))
            raise

    def _run(self, started: float) -> UploadResult:
        state = self.state.load(self._control.endpoint, self.destination)
        fingerprint = self._fingerprint(state)
        if not self._one_put(fingerprint.size):
            # An upload that can outlive this process needs its state; one PUT does not.
            self.state.ensure_writable()
        try:
            facts = self._finder.gather(fingerprint, state,
                                        one_put=self._one_put(fingerprint.size))
        except Stopped as stop:
            return self._stopped(stop, None, fingerprint.size, 0, started)
        open_id = facts.upload_id if facts.listed is not None else None
        if self._flow.cancelled:
            self._cancelled(open_id)
        try:
            decision = self._finder.decide(facts)
        except Stopped as stop:
            # Said as what S3 holds, so a progress bar does not jump back to zero.
            held = sum(part.size for part in facts.listed or ())
            return self._stopped(stop, open_id, fingerprint.size, held, started)
        if isinstance(decision, Refuse):
            if isinstance(decision.error, UploadGoneError):
                self.state.remove(self._control.endpoint, self.destination)
            raise decision.error
        if isinstance(decision, AlreadyComplete):
            return self._already_complete(decision, started)
        if isinstance(decision, Create) and self._one_put(fingerprint.size):
            return self._put_whole(decision, facts, started)
        if isinstance(decision, Create):
            try:
                upload_id = self._create(decision, fingerprint)
            except Stopped as stop:
                return self._stopped(stop, None, fingerprint.size, 0, started)
            resume = Resume(upload_id=upload_id, plan=decision.plan, checksum=decision.checksum,
                            keep={}, mismatched=(), unverifiable=(), found_by="state",
                            save_state=False, etags_are_md5s=True)
            return self._send(resume, "", decision.replaces is not None, fingerprint, started)
        self._prepare_resume(decision, fingerprint)
        return self._send(decision, decision.found_by, False, fingerprint, started)

    def _stopped(self, stop: Stopped, upload_id: str | None, size: int, held: int,
                 started: float) -> UploadResult:
        """End a run that a cancel, a pause or the deadline stopped before its parts were
        sent; ``held`` is the bytes S3 holds for it."""
        if self._flow.cancelled:
            self._cancelled(upload_id)
        if str(stop) == "deadline":
            raise TransferError(f"upload of {self.source.name} to {self.destination} stopped "
                                "at its deadline before its parts were sent; rerun to resume")
        self._subscribers.emit(ev.Paused(held, size))
        plan = plan_parts(size, self.config.part_size)
        return self._result("paused", upload_id or "", plan, 0, 0, started)

    def _one_put(self, size: int) -> bool:
        """Whether a source of ``size`` goes as one ``PutObject`` (it fits in one part)."""
        return size <= self.config.part_size and self._control.signs_objects

    def _fingerprint(self, state: ResumeState | None) -> Fingerprint:
        """What identifies the source. A local file that goes as one PUT, with no resume
        ``state`` left by an earlier multipart run, needs only its size and mtime (nothing
        of it is kept), so its edges are not read and hashed."""
        if isinstance(self.source, LocalFileSource) and state is None:
            size, version = self.source.stat()
            if self._one_put(size):
                return Fingerprint(size=size, version=version, edges_sha256="")
        return self.source.fingerprint()

    def _changed_since(self, fingerprint: Fingerprint) -> bool:
        """Whether the source changed since ``fingerprint``: a local file by its size and
        mtime (no read), another source by a new fingerprint."""
        if isinstance(self.source, LocalFileSource):
            return self.source.stat() != (fingerprint.size, fingerprint.version)
        return self.source.fingerprint() != fingerprint

    def _put_whole(self, decision: Create, facts: ResumeFacts, started: float) -> UploadResult:
        """Send a source that fits in one part as one PUT: no multipart upload to create,
        complete or resume (a rerun sends it again, at most one part size)."""
        size, emit = facts.fingerprint.size, self._subscribers.emit
        plan, signer = decision.plan, self._control
        emit(ev.Started(self.destination, "", size, plan.count, plan.part_size))
        emit(ev.Progress(0, size))
        body = self.source.read(0, size)
        if self._changed_since(facts.fingerprint):
            raise SourceChangedError(
                f"{self.source.name} changed while it was being read; nothing was sent to "
                f"{self.destination}: rerun once the file is complete")

        def sign(parts: Sequence[PartToSign]) -> list[SignedPart]:
            return [signer.sign_object(self.destination, part,
                                       content_type=self.config.content_type,
                                       metadata=self.metadata,
                                       expires_in=self.config.url_expiry) for part in parts]

        tally = Tally(self._subscribers, done=0, total=size)
        sending = PartSending(
            control=self._control, destination=self.destination, upload_id="",
            sender=self._sender, config=self.config, checksum=decision.checksum,
            flow=self._flow, subscribers=self._subscribers, tally=tally,
            source_name=self.source.name, sign=sign)
        try:
            part = sending.send(1, lambda: body)
        except Stopped as stop:
            if self._flow.cancelled:
                self._cancelled(None)
            if str(stop) == "deadline":
                raise TransferError(f"upload of {self.source.name} to {self.destination} "
                                    "stopped at its deadline; rerun to send it") from None
            emit(ev.Paused(0, size))
            return self._result("paused", "", plan, 0, 0, started)
        etag = part.etag
        if not etag:  # a store that answered no ETag: read it back, and the size with it
            info = self._control.head(self.destination)
            if info is None or info.size != size:
                raise IntegrityError(
                    f"{self.destination} was written from {self.source.name} but reads back "
                    f"as {'missing' if info is None else f'{info.size} bytes'}, not {size} "
                    "bytes: upload it again")
            etag = info.etag
        if facts.state is not None:
            self.state.remove(self._control.endpoint, self.destination)
        if decision.replaces is not None:
            emit(ev.Restarted(decision.replaces, "the upload was aborted or expired"))
        emit(ev.Completed(self.destination, size, etag))
        return self._result("completed", "", plan, tally.sent, 0, started, etag=etag,
                            restarted=decision.replaces is not None)

    def _send(self, decision: Resume, found_by: str, restarted: bool,
              fingerprint: Fingerprint, started: float) -> UploadResult:
        upload_id, plan, present = decision.upload_id, decision.plan, dict(decision.keep)
        present_bytes = sum(p.size for p in present.values())
        emit = self._subscribers.emit
        emit(ev.Started(self.destination, upload_id, plan.size, plan.count, plan.part_size))
        if found_by:
            emit(ev.Resumed(upload_id, present_bytes, len(present), found_by))
        emit(ev.Progress(present_bytes, plan.size))
        tally = Tally(self._subscribers, done=present_bytes, total=plan.size)
        sending = PartSending(
            control=self._control, destination=self.destination, upload_id=upload_id,
            sender=self._sender, config=self.config, checksum=decision.checksum, flow=self._flow,
            subscribers=self._subscribers, tally=tally, source_name=self.source.name)
        todo = [part for part in plan if part.number not in present]
        sent = send_all(sending, todo, self._read, flow=self._flow,
                        concurrency=self.config.concurrency)
        parts = {**present, **sent}
        result = functools.partial(
            self._result, upload_id=upload_id, plan=plan, bytes_sent=tally.sent,
            bytes_resumed=present_bytes, started=started, resumed=bool(found_by),
            restarted=restarted)
        if len(parts) < plan.count:
            if self._flow.cancelled:
                self._cancelled(upload_id)
            emit(ev.Paused(tally.done, plan.size))
            return result("paused")
        if self.source.fingerprint() != fingerprint:
            raise SourceChangedError(
                f"{self.source.name} changed while it was being uploaded; upload {upload_id} "
                f"to {self.destination} was left open: restore the file and rerun, or run "
                f"`streamify abort {self.destination}` and upload again")
        try:
            info = complete_upload(
                self._control, self.destination, upload_id, plan.size,
                [parts[n] for n in range(1, plan.count + 1)], self.source.name,
                etags_are_md5s=decision.etags_are_md5s and not sending.opaque_etags)
        except IntegrityError:
            # Assembled, so no upload is left to resume: the error says what to do.
            self.state.remove(self._control.endpoint, self.destination)
            raise
        except Stopped as stop:
            if self._flow.cancelled:
                self._cancelled(upload_id)
            if str(stop) == "deadline":
                raise TransferError(
                    f"upload of {self.source.name} to {self.destination} stopped at its "
                    f"deadline with every part sent but not completed; rerun to complete "
                    f"upload {upload_id}") from None
            emit(ev.Paused(tally.done, plan.size))
            return result("paused")
        self.state.remove(self._control.endpoint, self.destination)
        emit(ev.Completed(self.destination, info.size, info.etag))
        return result("completed", etag=info.etag)

    def _result(self, status: Literal["completed", "paused"], upload_id: str, plan: PartPlan,
                bytes_sent: int, bytes_resumed: int, started: float, *, etag: str = "",
                resumed: bool = False, restarted: bool = False) -> UploadResult:
        return UploadResult(
            destination=self.destination, status=status, upload_id=upload_id, size=plan.size,
            etag=etag, parts=plan.count, bytes_sent=bytes_sent, bytes_resumed=bytes_resumed,
            resumed=resumed, restarted=restarted, seconds=time.monotonic() - started)

    def _read(self, part: Part) -> bytes:
        return self.source.read(part.offset, part.size)

    def _prepare_resume(self, decision: Resume, fingerprint: Fingerprint) -> None:
        if decision.save_state:
            try:
                self.state.save(self._state_for(decision.upload_id, decision.plan,
                                                decision.checksum, fingerprint))
            except StateStoreError as exc:
                # The upload is open and was found without a state: a rerun finds it so
                # again, so the hint is no reason to stop.
                _log.warning("%s; upload %s goes on without it, and a rerun finds it in S3 "
                             "and resumes it", exc, decision.upload_id)
        if decision.unverifiable:
            _log.warning(
                "upload %s to %s: parts %s have an ETag that is not the MD5 of %s (damaged, "
                "or encrypted with SSE-KMS or SSE-C) and no additional checksum to check "
                "them by; sending them again (with checksum='sha256' they are checked in "
                "place)", decision.upload_id, self.destination,
                ", ".join(map(str, decision.unverifiable)), self.source.name)

    def _already_complete(self, done: AlreadyComplete, started: float) -> UploadResult:
        emit = self._subscribers.emit
        if done.upload_id is not None:
            self.state.remove(self._control.endpoint, self.destination)
            emit(ev.Resumed(done.upload_id, done.plan.size, done.plan.count, "state"))
        emit(ev.Progress(done.plan.size, done.plan.size))
        emit(ev.Completed(self.destination, done.info.size, done.info.etag))
        # Bytes resumed are those of an upload this run found and completed, not those of
        # an object that was already there.
        resumed = done.upload_id is not None
        result = self._result("completed", done.upload_id or "", done.plan, 0,
                              done.plan.size if resumed else 0, started, etag=done.info.etag,
                              resumed=resumed)
        return replace(result, skipped=done.upload_id is None)

    def _state_for(self, upload_id: str, plan: PartPlan, checksum: str,
                   fingerprint: Fingerprint) -> ResumeState:
        return ResumeState(endpoint=self._control.endpoint, destination=self.destination,
                           upload_id=upload_id, part_size=plan.part_size,
                           source=self.source.name, fingerprint=fingerprint,
                           checksum=checksum, api_url=getattr(self._control, "api_url", None),
                           principal=getattr(self._control, "principal", ""))

    def _create(self, decision: Create, fingerprint: Fingerprint) -> str:
        upload_id = self._control.create_upload(
            self.destination, content_type=self.config.content_type, metadata=self.metadata,
            checksum=decision.checksum, size=fingerprint.size)
        try:
            self.state.save(self._state_for(upload_id, decision.plan, decision.checksum,
                                            fingerprint))
        except StateStoreError as exc:
            # Without a state the upload could still be found by listing, but an upload we
            # cannot track is one we should not leave behind.
            self._control.abort(self.destination, upload_id)
            raise StateStoreError(f"{exc}; nothing was sent to {self.destination} (the "
                                  "upload just started was aborted)") from exc
        if decision.replaces is not None:
            self._subscribers.emit(ev.Restarted(decision.replaces,
                                                "the upload was aborted or expired"))
        return upload_id

    # ------------------------------------------------------------------ the end
    def _cancelled(self, upload_id: str | None) -> None:
        if upload_id is not None:
            self._control.abort(self.destination, upload_id)
        self.state.remove(self._control.endpoint, self.destination)
        raise UploadCancelledError(f"upload of {self.source.name} to {self.destination} "
                                   "was cancelled and its multipart upload aborted")

    def close(self) -> None:
        """Release the source and the data-path connections this uploader opened (not a
        ``Source`` or ``sender`` passed in, nor the control plane). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._own_sender:
            self._sender.close()
        if self._own_source:
            self.source.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
