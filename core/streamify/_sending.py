"""Sending parts: sign, PUT, retry and re-sign, with progress that never double-counts.

One role, shared by the file engine (:class:`~streamify.Uploader`) and the stream writer
(:class:`~streamify.StreamWriter`): each part is signed (many workers' requests go out
together through a :class:`BatchSigner`), PUT through one pooled :class:`PartSender`, and
retried as ``_retry`` classifies its failure. :class:`Flow` carries pause, cancel and the
deadline to every worker.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

import urllib3.exceptions

from . import _events as ev
from ._checksum import additional_checksum, md5_base64, md5_hex_from_base64
from ._config import UploadConfig
from ._control import ControlPlane, PartToSign, SignedPart, UploadedPart
from ._destination import Destination
from ._errors import (
    AccessDeniedError,
    DestinationError,
    EndpointError,
    StreamifyError,
    TransferError,
    UploadGoneError,
)
from ._plan import Part
from ._retry import DENIED_CODES, Action, PartRejected, classify_network, classify_status
from ._signing import BatchSigner
from ._throttle import Throttle
from ._transport import PartSender

__all__ = ["Flow", "PartSending", "Stopped", "Tally", "new_sender", "send_all"]

# No connection was made: the PUT surely never arrived.
_NOT_CONNECTED = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                  ConnectionRefusedError)


class Stopped(Exception):
    """A worker saw pause, cancel or the deadline (``str()`` says which)."""


class Flow:
    """Pause, cancel and the deadline of one upload, seen by all its workers."""

    def __init__(self) -> None:
        self.paused = False
        self.cancelled = False
        self.failed = False
        self.deadline_at: float | None = None
        self._wake = threading.Event()

    def start(self, deadline: float | None) -> None:
        """A new run: forget an earlier pause or failure (a cancel stays), start the
        deadline clock."""
        self.paused = False
        self.failed = False
        if not self.cancelled:
            self._wake.clear()
        self.deadline_at = None if deadline is None else time.monotonic() + deadline

    def pause(self) -> None:
        self.paused = True
        self._wake.set()

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    def fail(self) -> None:
        """A part failed for good: the other workers take no next step."""
        self.failed = True
        self._wake.set()

    def check(self) -> None:
        """Raise :class:`Stopped` if the upload must stop before its next step."""
        if self.cancelled or self.paused or self.failed:
            raise Stopped("cancel" if self.cancelled else "pause" if self.paused else "failed")
        if self.deadline_at is not None and time.monotonic() > self.deadline_at:
            raise Stopped("deadline")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the upload is paused or cancelled meanwhile."""
        self._wake.wait(seconds)


class Tally:
    """Bytes done (present, sent and in flight) and bytes sent, emitted as ``Progress``.

    A failed attempt's bytes are taken back, so a retried part is never counted twice.
    """

    def __init__(self, subscribers: ev.Subscribers, *, done: int = 0, total: int = 0) -> None:
        self._subscribers = subscribers
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}
        self.done = done
        self.sent = 0
        self.total = total

    def add(self, number: int, amount: int) -> None:
        with self._lock:
            self._in_flight[number] = self._in_flight.get(number, 0) + amount
            self.done += amount
            self.sent += amount
            done, total = self.done, self.total
        self._subscribers.emit(ev.Progress(done, total))

    def settle(self, number: int) -> None:
        """The part arrived: its bytes stay counted."""
        with self._lock:
            self._in_flight.pop(number, None)

    def take_back(self, number: int) -> None:
        """The attempt failed: its bytes no longer count as done."""
        with self._lock:
            self.done -= self._in_flight.pop(number, 0)


def new_sender(config: UploadConfig, control: object = None) -> PartSender:
    """The pooled data-path client an upload uses when none is given; it checks TLS as
    ``control``'s client does (its ``tls_verify``, when it has one)."""
    throttle = Throttle(config.bwlimit) if config.bwlimit else None
    verify: bool | str = getattr(control, "tls_verify", True)
    return PartSender(pool_size=config.concurrency, connect_timeout=config.connect_timeout,
                      read_timeout=config.read_timeout, throttle=throttle, verify=verify)


class PartSending:
    """Sends the parts of one open upload, each until it arrives or its failure is final."""

    def __init__(self, *, control: ControlPlane, destination: Destination, upload_id: str,
                 sender: PartSender, config: UploadConfig, checksum: str, flow: Flow,
                 subscribers: ev.Subscribers, tally: Tally, source_name: str,
                 sign: Callable[[Sequence[PartToSign]], list[SignedPart]] | None = None,
                 ) -> None:
        """``sign`` replaces the part signing of ``upload_id`` (a whole-object PUT)."""
        self.destination = destination
        self._sender = sender
        self._config = config
        self._checksum = checksum
        self._flow = flow
        self._subscribers = subscribers
        self._tally = tally
        self._source_name = source_name
        # An upload started without an additional checksum has only Content-MD5 to check
        # its parts by, whatever the config says now.
        self._md5 = config.content_md5 or checksum == "none"
        self._reached = False
        self.opaque_etags = False
        """Whether a part's ETag is not known to be its MD5 (storage answered another
        value, or the part went without Content-MD5)."""
        self._signer = BatchSigner(
            sign or (lambda parts: control.sign_parts(destination, upload_id, parts,
                                                      expires_in=config.url_expiry)),
            linger=control.sign_linger if sign is None else 0.0, max_batch=config.concurrency)

    def send(self, number: int, read: Callable[[], bytes]) -> UploadedPart:
        """Send part ``number`` whose body ``read()`` returns (called again on each retry).

        Failures are classified by ``_retry`` and retried under the upload's budget
        (``UploadConfig.retry_budget``); a rejected URL is signed again at once."""
        try:
            return self._send(number, read)
        except StreamifyError:
            self._flow.fail()
            raise

    def _send(self, number: int, read: Callable[[], bytes]) -> UploadedPart:
        budget = self._config.retry_budget()
        resigned = False
        where = f"part {number} of {self._source_name} to {self.destination}"
        while True:
            self._flow.check()
            body = read()
            md5 = md5_base64(body) if self._md5 else None
            checksum = additional_checksum(self._checksum, body)
            connected = True
            expired = False
            try:
                signed_at = time.monotonic()
                signed = self._signer.sign(PartToSign(number, len(body), md5, checksum))
                on_progress = functools.partial(self._tally.add, number)
                etag = self._sender.put(signed, body, on_progress)
            except PartRejected as exc:
                self._reached = True
                action = classify_status(exc.status, exc.code)
                # Measured on the monotonic clock, which no clock change moves.
                expired = 0 < signed.expires_in <= time.monotonic() - signed_at
                reason, retry_after, code = str(exc), exc.retry_after, exc.code
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                action, reason, retry_after = classify_network(exc), _network_reason(exc), None
                code = ""
                connected = not isinstance(exc, _NOT_CONNECTED)
            else:
                self._reached = True
                # Storage checked the body against the Content-MD5 the PUT carried, so an
                # ETag that differs is not an MD5 (SSE-KMS, SSE-C): keep it, do not resend.
                # Without Content-MD5 nothing tells what the ETag is.
                md5_hex = md5_hex_from_base64(md5) if md5 else None
                if md5_hex is None or (etag and etag != md5_hex):
                    self.opaque_etags = True
                self._tally.settle(number)
                self._subscribers.emit(ev.PartDone(number, len(body)))
                return UploadedPart(number, etag or md5_hex or "", len(body), checksum)
            del body
            self._tally.take_back(number)
            if action is Action.UPLOAD_GONE:
                raise UploadGoneError(f"{where}: the multipart upload no longer exists "
                                      "(aborted or expired); rerun to start again")
            if action is Action.FATAL:
                raise _fatal(where, code, reason, self.destination)
            if action is Action.RESIGN and not resigned:
                resigned = True
                self._subscribers.emit(ev.Retrying(number, budget.attempts + 1, 0.0,
                                                   f"{action.value}: {reason}"))
                continue
            if action is Action.RESIGN and expired:
                raise TransferError(
                    f"{where}: storage refused it again ({reason}) once its URL's "
                    f"{signed.expires_in} s expiry had passed: the PUT takes longer than "
                    "that to be answered; raise url_expiry or lower the part size, then "
                    "rerun to resume")
            if action is Action.RESIGN:
                # A URL refused before its expiry by this machine's clock: signed wrongly
                # for storage, whose clock may differ by more than the expiry from ours.
                raise AccessDeniedError(
                    f"{where}: storage refused a freshly signed URL too ({reason}); check "
                    "the credentials and their permissions (bucket policy, KMS key), and "
                    "that this machine's clock is right (NTP)")
            resigned = False
            delay = budget.next_delay(time.monotonic(), retry_after=retry_after,
                                      connected=connected, reached=self._reached)
            if delay is None:
                raise TransferError(f"{where}: failed {budget.attempts} times, last: {reason}; "
                                    "rerun the same command to resume")
            self._subscribers.emit(ev.Retrying(number, budget.attempts, delay,
                                               f"{action.value}: {reason}"))
            self._flow.sleep(delay)


def _fatal(where: str, code: str, reason: str, destination: Destination) -> StreamifyError:
    """The error for a part PUT that no retry can help."""
    if code == "NoSuchBucket":
        return DestinationError(f"{where}: {destination.missing_bucket()}")
    if code == "RequestTimeTooSkewed":
        return AccessDeniedError(f"{where}: storage refused the request because this "
                                 "machine's clock differs from its own by more than 15 "
                                 "minutes; set the clock right (NTP) and rerun")
    if code in DENIED_CODES:
        return AccessDeniedError(f"{where}: storage refused it ({reason}); check the "
                                 "credentials and their permissions")
    if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
        return EndpointError(f"{where}: the storage's TLS certificate does not verify "
                             f"({reason}); check the endpoint and the CA bundle")
    return TransferError(f"{where}: storage refused it: {reason}")


def _network_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def send_all(sending: PartSending, todo: list[Part], read: Callable[[Part], bytes], *,
             flow: Flow, concurrency: int) -> dict[int, UploadedPart]:
    """Send ``todo`` through ``concurrency`` workers; return the parts that arrived.

    Stops early on pause, cancel or the deadline (the parts in flight finish first); a
    failure of any part stops the others and is raised, even one that came after a pause.
    """
    sent: dict[int, UploadedPart] = {}
    if not todo:
        return sent
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="streamify-part")
    futures: list[Future[UploadedPart]] = [
        pool.submit(sending.send, part.number, functools.partial(read, part)) for part in todo]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:
        # Ctrl-C: take no new part; only the parts already in flight may finish.
        _stop(flow, futures)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if any(f.exception() is not None for f in done):
        _stop(flow, futures)
    pool.shutdown(wait=True)
    finished = [f for f in futures if f.done() and not f.cancelled()]
    for future in finished:
        if future.exception() is None:
            part = future.result()
            sent[part.number] = part
    errors = [f.exception() for f in finished if f.exception() is not None]
    failure = next((e for e in errors if not isinstance(e, Stopped)), None)
    if failure is not None:
        raise failure
    if any(str(e) == "deadline" for e in errors):
        raise TransferError(
            f"upload to {sending.destination} stopped at its deadline with {len(sent)} new "
            "parts sent; rerun to resume")
    return sent


def _stop(flow: Flow, futures: list[Future[UploadedPart]]) -> None:
    """Stop the workers after their current part (internally, like a pause)."""
    flow.pause()
    for future in futures:
        future.cancel()
