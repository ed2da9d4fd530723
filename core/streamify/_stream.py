"""Streams of unknown size (a pipe, stdin, an fsspec ``open(..., "wb")``) written to S3.

The bytes are cut into parts as they arrive; part sizes grow with the stream
(:func:`~streamify._plan.stream_part_size`) so even a stream can reach 5 TiB within 10,000
parts. Full parts go to the same part-sending role the file engine uses (signing, retries,
re-signing, progress that never double-counts), through ``concurrency`` workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from threading import Semaphore
from types import TracebackType
from typing import IO, cast

from . import _events as ev
from ._calls import may_have_arrived, retrying
from ._completion import complete_upload
from ._config import UploadConfig
from ._control import ControlPlane, UploadedPart
from ._destination import Destination
from ._errors import (
    EndpointError,
    IntegrityError,
    StreamifyError,
    TransferError,
    UploadCancelledError,
)
from ._plan import MAX_PARTS, stream_part_size
from ._result import UploadResult
from ._sending import Flow, PartSending, Stopped, Tally, new_sender
from ._transport import PartSender

__all__ = ["StreamWriter", "write_stream"]

_CHUNK = 1024 * 1024



class StreamWriter:
    """Writes a stream of unknown size to ``destination`` as one multipart upload.

    ``write()`` fills the current part; a full part goes to a worker, and ``write()`` blocks
    while ``concurrency`` parts are queued or in flight, so memory stays about
    ``concurrency x part size`` (plus the part being filled). ``close()`` sends the last
    part, completes and verifies the object (a stream of 0 bytes makes an empty object);
    ``abort()`` aborts the multipart upload. As a context manager, an exception inside the
    ``with`` block aborts and a normal exit closes.

    A stream resumes within the process (each part is retried, re-signed when its URL
    expired) but not after a crash: its bytes cannot be read again once the process is gone.
    An upload left open by a crash is cleaned up by ``streamify gc`` or a bucket lifecycle
    rule. Use one thread to write.
    """

    def __init__(self, destination: Destination | str, *, control: ControlPlane,
                 config: UploadConfig | None = None, metadata: dict[str, str] | None = None,
                 sender: PartSender | None = None) -> None:
        self.destination = (destination if isinstance(destination, Destination)
                            else Destination.parse(destination))
        self.control = control
        self.config = config or UploadConfig()
        self.metadata = metadata or {}
        self._own_sender = sender is None
        self._sender = sender or new_sender(self.config, control)
        self._subscribers = ev.Subscribers()
        self._flow = Flow()
        self._flow.start(self.config.deadline)
        # Every call to storage or the API service rides out outages under the budget.
        self._control = retrying(control, self.config, flow=self._flow,
                                 subscribers=self._subscribers)
        self._tally = Tally(self._subscribers)
        self._slots = Semaphore(self.config.concurrency)
        self._pool = ThreadPoolExecutor(self.config.concurrency,
                                        thread_name_prefix="streamify-stream")
        self._futures: list[Future[UploadedPart]] = []
        self._failure: BaseException | None = None
        self._buffer = bytearray()
        self._number = 1
        self._size = 0
        self._upload_id: str | None = None
        self._sending: PartSending | None = None
        self._started = time.monotonic()
        self._result: UploadResult | None = None
        self._finished = False

    def subscribe(self, callback: ev.Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes.

        ``Progress.total_bytes`` is the bytes written so far (the end is not known)."""
        return self._subscribers.add(callback)

    # ------------------------------------------------------------------ writing
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; send each part that fills up. Returns ``len(data)`` in bytes."""
        if self._finished:
            raise ValueError(f"write to a closed or aborted stream to {self.destination}")
        self._raise_failure()
        view = memoryview(data).cast("B")
        written = len(view)
        while view:
            if self._number > MAX_PARTS:
                raise StreamifyError(
                    f"the stream to {self.destination} is longer than S3 allows in "
                    f"{MAX_PARTS:,} parts (5 TiB at most); split it into several objects")
            part_size = stream_part_size(self._number, self.config.part_size)
            room = part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == part_size:
                self._submit()
        self._size += written
        self._tally.total = self._size
        return written

    def _submit(self) -> None:
        """Hand the buffered part to a worker, waiting for a free slot first."""
        sending = self._open()
        # The filled buffer itself goes to the worker (no copy); a new one takes its place.
        body, self._buffer = cast(bytes, self._buffer), bytearray()
        self._slots.acquire()
        try:
            self._raise_failure()
        except BaseException:
            self._slots.release()
            raise
        future = self._pool.submit(sending.send, self._number, lambda: body)
        future.add_done_callback(self._done)
        self._futures.append(future)
        self._number += 1

    def _open(self) -> PartSending:
        if self._sending is None:
            self._upload_id = self._create()
            self._sending = PartSending(
                control=self._control, destination=self.destination, upload_id=self._upload_id,
                sender=self._sender, config=self.config, checksum=self.config.checksum,
                flow=self._flow, subscribers=self._subscribers, tally=self._tally,
                source_name="the stream")
            self._subscribers.emit(ev.Started(self.destination, self._upload_id, 0, 0,
                                              self.config.part_size))
        return self._sending

    def _create(self) -> str:
        """Start the multipart upload. When the start may have reached storage but its
        answer was lost, it is not repeated (a second upload would be left open): the
        upload it may have started is found and aborted, and the error says to write the
        stream again, since a stream cannot be resumed."""
        try:
            return self._control.create_upload(
                self.destination, content_type=self.config.content_type,
                metadata=self.metadata, checksum=self.config.checksum)
        except EndpointError as exc:
            if not may_have_arrived(exc):
                raise
            raise EndpointError(
                f"the stream to {self.destination} could not start: storage may have "
                f"started its upload, but the answer never arrived. {self._abort_unanswered()}"
                " Nothing of the stream was sent: write it again.",
                transient=exc.transient, status=exc.status, retry_after=exc.retry_after,
                connected=exc.connected) from exc

    def _abort_unanswered(self) -> str:
        """Abort the uploads of this key that the unanswered start may have made, and say
        what was done. Those are the key's open uploads holding no part: S3's listing
        does not tell which one this start made (nor, on some servers, when each began),
        and an upload without a part holds nothing to lose."""
        try:
            found = [u for u in self._control.list_uploads(self.destination)
                     if u.destination.key == self.destination.key
                     and not self._control.list_parts(u.destination, u.upload_id)]
            for upload in found:
                self._control.abort(upload.destination, upload.upload_id)
        except StreamifyError as exc:
            return (f"An upload it may have started could not be looked for ({exc}): "
                    "`streamify gc` or a bucket lifecycle rule removes it.")
        if not found:
            return "It had started no upload."
        return f"The upload it had started ({found[0].upload_id}) was aborted." if len(
            found) == 1 else f"The {len(found)} uploads it may have started were aborted."

    def _done(self, future: Future[UploadedPart]) -> None:
        """A worker finished a part: free its slot, remember the first failure."""
        error = None if future.cancelled() else future.exception()
        # The part that failed is the one to report, not the workers it stopped.
        if error is not None and (self._failure is None or isinstance(self._failure, Stopped)):
            self._failure = error
        self._slots.release()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # ------------------------------------------------------------------ the end
    def close(self) -> UploadResult:
        """Send the last part, wait for every part, complete and verify the object.

        On failure the multipart upload is aborted (a stream cannot be resumed later) and
        the error raised."""
        if self._result is not None:
            return self._result
        if self._finished:
            raise UploadCancelledError(f"the stream to {self.destination} was aborted")
        try:
            if self._buffer or not self._futures:
                self._submit()  # the last part; the only (empty) one for an empty stream
            wait(self._futures)
            self._raise_failure()
            parts = [future.result() for future in self._futures]
            assert self._sending is not None and self._upload_id is not None
            try:
                info = complete_upload(self._control, self.destination, self._upload_id,
                                       self._size, parts, "the stream",
                                       etags_are_md5s=not self._sending.opaque_etags)
            except Stopped as stop:
                raise TransferError(f"the stream to {self.destination} stopped ({stop}) "
                                    "before storage completed it") from None
        except BaseException as exc:
            if isinstance(exc, IntegrityError):
                self._finish()  # assembled, so no upload is left to abort: the error says so
            else:
                self.abort()
            if isinstance(exc, StreamifyError):
                self._subscribers.emit(ev.Failed(exc))
            raise
        self._finish()
        self._subscribers.emit(ev.Completed(self.destination, info.size, info.etag))
        self._result = UploadResult(
            destination=self.destination, status="completed", upload_id=self._upload_id,
            size=info.size, etag=info.etag, parts=len(parts), bytes_sent=self._tally.sent,
            bytes_resumed=0, resumed=False, restarted=False,
            seconds=time.monotonic() - self._started)
        return self._result

    def abort(self) -> None:
        """Stop the workers and abort the multipart upload (nothing is left in S3)."""
        if self._finished:
            return
        self._flow.cancel()
        for future in self._futures:
            future.cancel()
        self._finish()
        if self._upload_id is not None:
            self._control.abort(self.destination, self._upload_id)

    def _finish(self) -> None:
        self._finished = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buffer = bytearray()
        if self._own_sender:
            self._sender.close()

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            self.abort()
        else:
            self.close()


def write_stream(writer: StreamWriter, readable: IO[bytes] | Iterable[bytes]) -> UploadResult:
    """Copy ``readable`` (a binary file object or an iterable of bytes) into ``writer``."""
    with writer:
        if hasattr(readable, "read"):
            reader: IO[bytes] = readable  # type: ignore[assignment]
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
        else:
            for chunk in readable:
                writer.write(chunk)
    return writer.close()
