"""The upload engine: find or start the upload, send what is missing, complete, verify.

S3 is the truth. The local state only says which upload id to look at; every run asks S3
which parts it holds, checks them against the source, sends the rest through a fixed pool
of workers (at most ``concurrency`` parts in memory), then completes and verifies.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

import urllib3.exceptions

from . import _events as ev
from ._checksum import additional_checksum, composite_etag, md5_base64, md5_hex_from_base64
from ._config import UploadConfig
from ._control import ControlPlane, ObjectInfo, PartToSign, UploadedPart
from ._destination import Destination
from ._errors import (
    IntegrityError,
    SourceChangedError,
    StreamifyError,
    TransferError,
    UploadCancelledError,
    UploadGoneError,
)
from ._plan import Part, PartPlan, plan_from_part_sizes, plan_parts
from ._retry import Action, PartRejected, backoff_delay, classify_status
from ._signing import BatchSigner
from ._source import Fingerprint, Source, open_source
from ._state import ResumeState, StateStore
from ._throttle import Throttle
from ._transport import PartSender

__all__ = ["UploadResult", "Uploader"]


@dataclass(frozen=True, kw_only=True)
class UploadResult:
    """What one run of an upload did."""

    destination: Destination
    status: Literal["completed", "paused"]
    upload_id: str
    size: int
    etag: str
    parts: int
    bytes_sent: int
    """Bytes this run sent (retries included)."""
    bytes_resumed: int
    """Bytes that were already in S3 and verified, so not sent again."""
    resumed: bool
    restarted: bool
    seconds: float


class _Stop(Exception):
    """Internal: a worker saw pause, cancel or the deadline."""


class _AlreadyComplete(Exception):
    """Internal: the upload was completed by an earlier run that died before forgetting it."""

    def __init__(self, upload_id: str, plan: PartPlan, info: ObjectInfo) -> None:
        self.upload_id, self.plan, self.info = upload_id, plan, info


class Uploader:
    """Uploads one source to one destination, resumably. ``run()`` may be called again
    after a pause or a failure: it picks up where S3 says the upload stands.

    Subscribe to events with ``subscribe``; ``pause`` and ``cancel`` may be called from any
    thread (a part in flight finishes first).
    """

    def __init__(self, source: Source | str | os.PathLike[str], destination: Destination | str,
                 *, control: ControlPlane, config: UploadConfig | None = None,
                 state: StateStore | None = None, sender: PartSender | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        self.source = open_source(source)
        self.destination = (destination if isinstance(destination, Destination)
                            else Destination.parse(destination))
        self.control = control
        self.config = config or UploadConfig()
        self.state = state or StateStore()
        self.metadata = metadata or {}
        throttle = Throttle(self.config.bwlimit) if self.config.bwlimit else None
        self._sender = sender or PartSender(
            pool_size=self.config.concurrency, connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout, throttle=throttle)
        self._subscribers: list[ev.Subscriber] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pause = False
        self._cancel = False
        self._in_flight: dict[int, int] = {}
        self._bytes_done = 0
        self._bytes_sent = 0
        self._deadline_at: float | None = None

    # ------------------------------------------------------------------ control surface
    def subscribe(self, callback: ev.Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def pause(self) -> None:
        """Stop after the parts in flight; the upload stays open and ``run()`` resumes it."""
        self._pause = True
        self._wake.set()

    def cancel(self) -> None:
        """Stop and abort the multipart upload; ``run()`` raises ``UploadCancelledError``."""
        self._cancel = True
        self._wake.set()

    def _emit(self, event: ev.Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    # ------------------------------------------------------------------ the run
    def run(self) -> UploadResult:
        """Upload (or resume) until completed, paused, cancelled or failed."""
        self._pause = self._cancel = False
        self._wake.clear()
        self._bytes_sent = 0
        started = time.monotonic()
        if self.config.deadline is not None:
            self._deadline_at = started + self.config.deadline
        try:
            return self._run(started)
        except StreamifyError as exc:
            self._emit(ev.Failed(exc))
            raise

    def _run(self, started: float) -> UploadResult:
        self.state.ensure_writable()
        fingerprint = self.source.fingerprint()
        try:
            upload_id, plan, present, found_by, restarted = self._open(fingerprint)
        except _AlreadyComplete as done:
            self.state.remove(self.control.endpoint, self.destination)
            self._emit(ev.Resumed(done.upload_id, done.plan.size, done.plan.count, "state"))
            self._emit(ev.Completed(self.destination, done.info.size, done.info.etag))
            return UploadResult(
                destination=self.destination, status="completed", upload_id=done.upload_id,
                size=done.plan.size, etag=done.info.etag, parts=done.plan.count, bytes_sent=0,
                bytes_resumed=done.plan.size, resumed=True, restarted=False,
                seconds=time.monotonic() - started)
        present_bytes = sum(p.size for p in present.values())
        self._bytes_done = present_bytes
        self._emit(ev.Started(self.destination, upload_id, plan.size, plan.count, plan.part_size))
        if found_by:
            self._emit(ev.Resumed(upload_id, present_bytes, len(present), found_by))
        self._emit(ev.Progress(self._bytes_done, plan.size))

        todo = [part for part in plan if part.number not in present]
        sent = self._send_all(upload_id, todo)
        parts = {**present, **sent}
        result_kwargs = {
            "destination": self.destination, "upload_id": upload_id, "size": plan.size,
            "parts": plan.count, "bytes_sent": self._bytes_sent, "bytes_resumed": present_bytes,
            "resumed": bool(found_by), "restarted": restarted,
        }
        if len(parts) < plan.count:
            if self._cancel:
                self._abort(upload_id)
                raise UploadCancelledError(f"upload of {self.source.name} to {self.destination} "
                                           "was cancelled and its multipart upload aborted")
            self._emit(ev.Paused(self._bytes_done, plan.size))
            return UploadResult(status="paused", etag="", seconds=time.monotonic() - started,
                                **result_kwargs)  # type: ignore[arg-type]

        if self.source.fingerprint() != fingerprint:
            raise SourceChangedError(
                f"{self.source.name} changed while it was being uploaded; upload {upload_id} "
                f"to {self.destination} was left open: restore the file and rerun, or run "
                f"`streamify abort {self.destination}` and upload again")
        info = self._complete(upload_id, plan, parts)
        self.state.remove(self.control.endpoint, self.destination)
        self._emit(ev.Completed(self.destination, info.size, info.etag))
        return UploadResult(status="completed", etag=info.etag,
                            seconds=time.monotonic() - started, **result_kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ finding the upload
    def _open(self, fingerprint: Fingerprint
              ) -> tuple[str, PartPlan, dict[int, UploadedPart], str, bool]:
        """Return (upload id, plan, verified parts present, how it was found, restarted)."""
        endpoint = self.control.endpoint
        state = self.state.load(endpoint, self.destination)
        if state is not None:
            if state.fingerprint.size != fingerprint.size or (
                    state.fingerprint.edges_sha256 != fingerprint.edges_sha256):
                raise SourceChangedError(
                    f"{self.source.name} is not the file that upload {state.upload_id} to "
                    f"{self.destination} was started with (it changed since); the old upload "
                    f"was left open: restore the file and rerun to finish it, or run "
                    f"`streamify abort {self.destination}` to start over")
            try:
                listed = self.control.list_parts(self.destination, state.upload_id)
            except UploadGoneError as exc:
                plan = PartPlan(size=fingerprint.size, part_size=state.part_size)
                info = self._completed_object(plan)
                if info is not None:
                    raise _AlreadyComplete(state.upload_id, plan, info) from exc
                self.state.remove(endpoint, self.destination)
                if self.config.on_upload_gone == "fail":
                    raise UploadGoneError(
                        f"upload {state.upload_id} to {self.destination} was aborted or expired "
                        "behind our back; rerun to start a fresh upload") from exc
                upload_id, plan = self._create(fingerprint)
                self._emit(ev.Restarted(state.upload_id, "the upload was aborted or expired"))
                return upload_id, plan, {}, "", True
            plan = PartPlan(size=fingerprint.size, part_size=state.part_size)
            # Only a touched or copied file (same size and edges, new time) gets this far
            # with another fingerprint: every part S3 holds must then match it exactly.
            touched = state.fingerprint != fingerprint
            good = self._verify(plan, listed, strict=touched, upload_id=state.upload_id)
            if touched:
                self.state.save(self._state_for(state.upload_id, plan, fingerprint))
            return state.upload_id, plan, good, "state", False

        for upload in reversed(self.control.list_uploads(self.destination)):
            if upload.destination.key != self.destination.key:
                continue
            try:
                listed = self.control.list_parts(self.destination, upload.upload_id)
            except UploadGoneError:
                continue
            plan = (plan_from_part_sizes(fingerprint.size, [(p.number, p.size) for p in listed])
                    or plan_parts(fingerprint.size, self.config.part_size))
            good = self._verify(plan, listed, strict=True, upload_id=upload.upload_id)
            self.state.save(self._state_for(upload.upload_id, plan, fingerprint))
            return upload.upload_id, plan, good, "listing", False
        upload_id, plan = self._create(fingerprint)
        return upload_id, plan, {}, "", False

    def _completed_object(self, plan: PartPlan) -> ObjectInfo | None:
        """The object at the destination if it is exactly the source cut by ``plan``."""
        info = self.control.head(self.destination)
        if info is None or info.size != plan.size or info.etag != f"{info.etag[:32]}-{plan.count}":
            return None

        def part_md5(part: Part) -> str:
            data = self.source.read(part.offset, part.size)
            return hashlib.md5(data, usedforsecurity=False).hexdigest()

        with ThreadPoolExecutor(self.config.concurrency) as pool:
            expected = composite_etag(pool.map(part_md5, plan))
        return info if info.etag == expected else None

    def _state_for(self, upload_id: str, plan: PartPlan, fingerprint: Fingerprint) -> ResumeState:
        return ResumeState(endpoint=self.control.endpoint, destination=self.destination,
                           upload_id=upload_id, part_size=plan.part_size,
                           source=self.source.name, fingerprint=fingerprint,
                           checksum=self.config.checksum)

    def _create(self, fingerprint: Fingerprint) -> tuple[str, PartPlan]:
        plan = plan_parts(fingerprint.size, self.config.part_size)
        upload_id = self.control.create_upload(
            self.destination, content_type=self.config.content_type, metadata=self.metadata,
            checksum=self.config.checksum, size=fingerprint.size)
        try:
            self.state.save(self._state_for(upload_id, plan, fingerprint))
        except StreamifyError:
            # Without a state the upload could still be found by listing, but an upload we
            # cannot track is one we should not leave behind.
            self._abort(upload_id)
            raise
        return upload_id, plan

    def _verify(self, plan: PartPlan, listed: list[UploadedPart], *, strict: bool,
                upload_id: str = "") -> dict[int, UploadedPart]:
        """Keep the listed parts whose size and MD5 match the source.

        ``strict`` (an upload found only by listing): any mismatch means that upload holds
        other data, so refuse rather than mix two files into one object.
        """
        candidates = [p for p in listed
                      if p.number <= plan.count and p.size == plan.part(p.number).size]
        if strict and len(candidates) != len(listed):
            raise self._foreign_upload(upload_id)

        def matches(uploaded: UploadedPart) -> bool:
            if len(uploaded.etag) != 32:  # not a plain MD5 (SSE-KMS...): size must do
                return True
            part = plan.part(uploaded.number)
            data = self.source.read(part.offset, part.size)
            return hashlib.md5(data, usedforsecurity=False).hexdigest() == uploaded.etag

        with ThreadPoolExecutor(self.config.concurrency) as pool:
            verdicts = list(pool.map(matches, candidates))
        good = {p.number: p for p, ok in zip(candidates, verdicts, strict=True) if ok}
        if strict and len(good) != len(listed):
            raise self._foreign_upload(upload_id)
        return good

    def _foreign_upload(self, upload_id: str) -> SourceChangedError:
        return SourceChangedError(
            f"an open upload ({upload_id}) to {self.destination} holds data that does not match "
            f"{self.source.name}; nothing was mixed: run `streamify abort {self.destination}` "
            "to discard it, or upload the original file to finish it")

    # ------------------------------------------------------------------ sending parts
    def _send_all(self, upload_id: str, todo: list[Part]) -> dict[int, UploadedPart]:
        sent: dict[int, UploadedPart] = {}
        if not todo:
            return sent
        signer = BatchSigner(
            lambda parts: self.control.sign_parts(self.destination, upload_id, parts,
                                                  expires_in=self.config.url_expiry),
            linger=self.control.sign_linger, max_batch=self.config.concurrency)
        pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="streamify-part")
        futures: list[Future[UploadedPart]] = [
            pool.submit(self._send_part, signer, part) for part in todo]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            # Ctrl-C: take no new part; only the parts already in flight may finish.
            self._stop_workers(futures)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        failure = next((f.exception() for f in done
                        if f.exception() and not isinstance(f.exception(), _Stop)), None)
        if failure is not None:
            self._stop_workers(futures)
        pool.shutdown(wait=True)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is None:
                part = future.result()
                sent[part.number] = part
        if failure is not None:
            raise failure
        stop = next((f.exception() for f in futures
                     if f.done() and not f.cancelled() and isinstance(f.exception(), _Stop)), None)
        if isinstance(stop, _Stop) and str(stop) == "deadline":
            raise TransferError(
                f"upload to {self.destination} stopped at its deadline of "
                f"{self.config.deadline:.0f} s with {len(sent)} new parts sent; rerun to resume")
        return sent

    def _stop_workers(self, futures: list[Future[UploadedPart]]) -> None:
        """Stop the workers after their current part (internally, like a pause)."""
        self._pause = True
        self._wake.set()
        for future in futures:
            future.cancel()

    def _check_stop(self) -> None:
        if self._cancel or self._pause:
            raise _Stop("cancel" if self._cancel else "pause")
        if self._deadline_at is not None and time.monotonic() > self._deadline_at:
            raise _Stop("deadline")

    def _progress(self, number: int, amount: int) -> None:
        with self._lock:
            self._in_flight[number] = self._in_flight.get(number, 0) + amount
            self._bytes_done += amount
            self._bytes_sent += amount
            done = self._bytes_done
        self._emit(ev.Progress(done, self.source.size))

    def _forget_in_flight(self, number: int) -> None:
        """A failed attempt's bytes no longer count as done (never double-count retries)."""
        with self._lock:
            self._bytes_done -= self._in_flight.pop(number, 0)

    def _send_part(self, signer: BatchSigner, part: Part) -> UploadedPart:
        attempt = 0
        while True:
            self._check_stop()
            body = self.source.read(part.offset, part.size)
            md5 = md5_base64(body)
            checksum = additional_checksum(self.config.checksum, body)
            try:
                signed = signer.sign(PartToSign(part.number, part.size, md5, checksum))
                on_progress = functools.partial(self._progress, part.number)
                etag = self._sender.put(signed, body, on_progress)
            except PartRejected as exc:
                action = classify_status(exc.status, exc.code)
                reason, retry_after = str(exc), exc.retry_after
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                action, reason, retry_after = Action.RETRY, f"{type(exc).__name__}: {exc}", None
            else:
                if etag and etag != md5_hex_from_base64(md5):
                    action, reason, retry_after = Action.RETRY, "ETag does not match MD5", None
                else:
                    with self._lock:
                        self._in_flight.pop(part.number, None)
                    self._emit(ev.PartDone(part.number, part.size))
                    return UploadedPart(part.number, md5_hex_from_base64(md5), part.size,
                                        checksum)
            del body
            self._forget_in_flight(part.number)
            attempt += 1
            where = f"part {part.number} of {self.source.name} to {self.destination}"
            if action is Action.UPLOAD_GONE:
                raise UploadGoneError(f"{where}: the multipart upload no longer exists "
                                      "(aborted or expired); rerun to start again")
            if action is Action.FATAL:
                raise TransferError(f"{where}: storage refused it: {reason}")
            if attempt >= self.config.max_attempts:
                raise TransferError(f"{where}: failed {attempt} times, last: {reason}; "
                                    "rerun the same command to resume")
            delay = backoff_delay(attempt, base=self.config.backoff_base,
                                  cap=self.config.backoff_max, retry_after=retry_after)
            self._emit(ev.Retrying(part.number, attempt, delay, f"{action.value}: {reason}"))
            self._wake.wait(delay)

    # ------------------------------------------------------------------ the end
    def _complete(self, upload_id: str, plan: PartPlan,
                  parts: dict[int, UploadedPart]) -> ObjectInfo:
        ordered = [parts[n] for n in range(1, plan.count + 1)]
        expected = composite_etag(p.etag for p in ordered)
        try:
            info = self.control.complete(self.destination, upload_id, ordered)
        except UploadGoneError:
            # A completion that succeeded but whose answer was lost looks like this on retry.
            info_or_none = self.control.head(self.destination)
            if info_or_none is None or info_or_none.etag != expected:
                raise
            info = info_or_none
        if info.size != plan.size or ("-" in info.etag and info.etag != expected):
            raise IntegrityError(
                f"{self.destination} was assembled but does not match {self.source.name} "
                f"(size {info.size} vs {plan.size}, ETag {info.etag} vs {expected}); the "
                "object was left in place: delete it and upload again")
        return info

    def _abort(self, upload_id: str) -> None:
        self.control.abort(self.destination, upload_id)
        self.state.remove(self.control.endpoint, self.destination)

    def close(self) -> None:
        self._sender.close()
        self.source.close()
