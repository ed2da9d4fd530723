"""``Uploader``: a widget that uploads a file the kernel can read, in the background."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import traitlets
from streamify import (
    ControlPlane,
    Destination,
    Event,
    HttpControlPlane,
    Paused,
    Progress,
    Restarted,
    Resumed,
    Retrying,
    Started,
    StateStore,
    UploadCancelledError,
    UploadConfig,
    UploadResult,
)
from streamify import Uploader as CoreUploader

from ._errors import plain_error
from ._progress import RateMeter
from ._widget import UploadWidget, make_control

__all__ = ["Uploader", "upload"]

_MiB = 1024 * 1024
_MAX_CHOICES = 200
_REFRESH_SECONDS = 0.25


def _mib(size: int) -> str:
    return f"{size / _MiB:.1f} MiB"


class Uploader(UploadWidget):
    """Uploads ``source`` (a path or fsspec URL the kernel can read) to ``destination``
    (``s3://bucket/key``) with Start, Pause, Resume and Cancel, a progress bar, speed and
    time left. The upload runs in a background thread, so the notebook stays usable.

    Resumable across kernel restarts: a new ``Uploader`` for the same source and destination
    finds the open upload through the core's resume state and S3 (the bar starts at the bytes
    S3 already holds). ``options`` are :class:`streamify.UploadConfig` fields
    (``part_size="16MiB"``, ``concurrency=8``, ``bwlimit="20MiB"``...).

    Without ``control``, the kernel's AWS credentials drive S3 directly (``endpoint_url``
    for S3-compatible storage); ``api_url`` and ``token`` (an API key) go through the
    Streamify API service instead.

    The file is open while a run is going or paused; ``close()`` closes the widget and
    releases what it opened (the file, and the S3 client it made, not a ``control`` passed
    in).
    """

    source = traitlets.Unicode("").tag(sync=True)
    choices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Entries of the folder the source names (a small file chooser); folders end with /."""

    # What close() looks at, here so that it works on a widget whose construction failed
    # (ipywidgets closes a widget when it is collected).
    _core: CoreUploader | None = None
    _thread: threading.Thread | None = None
    _look: threading.Thread | None = None
    _own_control = False

    def __init__(self, source: str | os.PathLike[str] = "", destination: str = "", *,
                 control: ControlPlane | None = None, endpoint_url: str | None = None,
                 api_url: str | None = None, token: str | None = None,
                 state_dir: str | None = None, **options: Any) -> None:
        config = UploadConfig.from_options(**options)  # refused before the widget exists
        self.control: ControlPlane = make_control(
            control, endpoint_url=endpoint_url, api_url=api_url, token=token,
            pool=max(10, config.concurrency * 2))
        super().__init__(kind="kernel", source=os.fspath(source), destination=destination)
        self.config = config
        self._own_control = control is None
        self.state = StateStore(state_dir)
        self.result: UploadResult | None = None
        """What the last run did (``None`` until a run ends without an error)."""
        self.upload_id = ""
        self._core_inputs = ("", "")
        self._meter = RateMeter()
        self._last_refresh = 0.0
        self._look_lock = threading.Lock()
        self.on_msg(self._on_command)
        self.observe(self._list_choices, names="source")
        self._list_choices()
        if self.source and self.destination:
            self._look = threading.Thread(target=self._show_what_s3_holds,
                                          name="streamify-notebook-look", daemon=True)
            self._look.start()

    # ------------------------------------------------------------------ commands
    def start(self) -> None:
        """Start, or resume, in a background thread. Does nothing while a run is going."""
        if self.running:
            return
        core = self._prepare()
        if core is None:
            return
        self._thread = threading.Thread(target=self._run_quietly, args=(core,),
                                        name="streamify-notebook", daemon=True)
        self._thread.start()

    def run(self) -> UploadResult:
        """Upload in the foreground and return the result (raises on failure)."""
        core = self._prepare()
        if core is None:
            raise ValueError(self.error)
        return self._run(core)

    def pause(self) -> None:
        """Stop after the parts in flight; ``start()`` (the Resume button) goes on."""
        if self._core is not None and self.running:
            self.status = "pausing"
            self._core.pause()

    def cancel(self) -> None:
        """Stop and abort the multipart upload, so S3 frees the parts already sent."""
        if self._core is not None and self.running:
            self.status = "cancelling"
            self._core.cancel()
        elif self.status == "paused" and self.upload_id:
            try:
                destination = Destination.parse(self.destination)
                self.control.abort(destination, self.upload_id)
                self.state.remove(self.control.endpoint, destination)
            except Exception as exc:
                self._fail(exc)
                return
            self._forget_core()
            self.status, self.detail = "cancelled", f"aborted the upload to {destination}"

    def wait(self, timeout: float | None = None) -> UploadResult | None:
        """Wait for the background run to end; returns ``result``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Close the widget, pausing a run that is going (``Uploader`` again resumes it),
        and release the file and the S3 client it opened. Closing again does nothing."""
        if self._core is not None and self.running:
            self._core.pause()
        if self._thread is not None:
            self._thread.join()
        self._release()
        super().close()

    def _release(self) -> None:
        """Close what this widget opened; the widget stays usable (Start opens again)."""
        self._forget_core()
        if self._look is not None:
            self._look.join()  # it may still ask S3, through the control plane
        if self._own_control:
            self.control.close()

    def _forget_core(self) -> None:
        """Close the core uploader, and its file; the next Start makes a new one."""
        core, self._core = self._core, None
        if core is not None:
            core.close()

    def _show_what_s3_holds(self) -> None:
        """After a kernel restart, show the upload this file left open, before Start.

        Only a display: Start hands the decision to the core, which checks every part.
        """
        try:
            destination = Destination.parse(self.destination)
            state = self.state.load(self.control.endpoint, destination)
            if state is None or state.source != self.source:
                return
            held = self.control.list_parts(destination, state.upload_id)
        except Exception:  # a hint only: Start reports real problems
            return
        with self._look_lock:
            if self.status != "ready":
                return
            size = sum(part.size for part in held)
            self.total_bytes, self.bytes_done = state.fingerprint.size, size
            self.upload_id, self.status = state.upload_id, "paused"
            self.detail = (f"an earlier upload of this file holds {_mib(size)} in S3; "
                           "press Resume to send the rest")

    def _on_command(self, _widget: object, content: dict[str, Any],
                    _buffers: Sequence[bytes]) -> None:
        command = content.get("command")
        if command in ("start", "resume"):
            self.start()
        elif command == "pause":
            self.pause()
        elif command == "cancel":
            self.cancel()

    # ------------------------------------------------------------------ the run
    def _prepare(self) -> CoreUploader | None:
        """The core uploader for the current inputs (the same one again after a pause)."""
        self.error = ""
        if not self.source or not self.destination:
            self._fail(ValueError("choose a source file and a destination s3://bucket/key"))
            return None
        with self._look_lock:
            self.status = "starting"
        core = self._core
        if core is None or self._core_inputs != (self.source, self.destination):
            self._forget_core()
            try:
                core = CoreUploader(self.source, self.destination, control=self.control,
                                    config=self.config, state=self.state)
            except Exception as exc:
                self._fail(exc)
                return None
            core.subscribe(self._on_event)
            self._core, self._core_inputs = core, (self.source, self.destination)
        self.status, self.detail = "starting", ""
        self._meter.reset()
        return core

    def _run_quietly(self, core: CoreUploader) -> None:
        try:
            self._run(core)
        except Exception:  # already shown in the widget by _run
            return

    def _run(self, core: CoreUploader) -> UploadResult:
        result: UploadResult | None = None
        try:
            result = core.run()
        except UploadCancelledError as exc:
            self.status, self.detail = "cancelled", str(exc)
            raise
        except Exception as exc:
            self._fail(exc)
            raise
        finally:
            # Resume goes on with the paused core; any other end gives its file back.
            if result is None or result.status != "paused":
                self._forget_core()
        self.result = result
        self.bytes_done = result.size if result.status == "completed" else self.bytes_done
        self.bytes_per_second, self.seconds_left = 0.0, None
        if result.status == "completed":
            self.detail = (f"uploaded {_mib(result.size)} to {result.destination} in "
                           f"{result.seconds:.1f} s ({_mib(result.bytes_resumed)} were already "
                           "in S3)")
        self.status = result.status
        return result

    def _fail(self, exc: BaseException) -> None:
        self.error = plain_error(exc, service=isinstance(self.control, HttpControlPlane))
        self.status = "failed"
        self.bytes_per_second, self.seconds_left = 0.0, None

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self.upload_id = event.upload_id
            self.total_bytes = event.total_bytes
            self.status = "uploading"
        elif isinstance(event, Resumed):
            parts = "part" if event.parts_present == 1 else "parts"
            self.detail = (f"resumed: {_mib(event.bytes_present)} ({event.parts_present} {parts}) "
                           "were already in S3")
        elif isinstance(event, Restarted):
            self.detail = f"started again: {event.reason}"
        elif isinstance(event, Retrying):
            self.detail = (f"retrying part {event.number} in {event.delay:.1f} s "
                           f"(attempt {event.attempt}): {event.reason}")
        elif isinstance(event, Progress):
            self._on_progress(event)
        elif isinstance(event, Paused):
            self.bytes_done = event.bytes_done
            self.detail = f"paused at {_mib(event.bytes_done)}; press Resume to go on"

    def _on_progress(self, event: Progress) -> None:
        now = time.monotonic()
        speed = self._meter.add(now, event.bytes_done, event.total_bytes)
        # Every chunk sends an event; the browser needs a few updates a second, not hundreds.
        if now - self._last_refresh < _REFRESH_SECONDS and event.bytes_done < event.total_bytes:
            return
        self._last_refresh = now
        self.bytes_done, self.total_bytes = event.bytes_done, event.total_bytes
        self.bytes_per_second, self.seconds_left = speed.bytes_per_second, speed.seconds_left

    # ------------------------------------------------------------------ file chooser
    def _list_choices(self, _change: object = None) -> None:
        if "://" in self.source:
            self.choices = []
            return
        folder = self.source if os.path.isdir(self.source) else os.path.dirname(self.source)
        try:
            with os.scandir(folder or ".") as entries:
                names = sorted(entry.name + ("/" if entry.is_dir() else "")
                               for entry in entries if not entry.name.startswith("."))
        except OSError:
            self.choices = []
            return
        self.choices = [os.path.join(folder, name) for name in names[:_MAX_CHOICES]]


def upload(source: str | os.PathLike[str], destination: str, *,
           control: ControlPlane | None = None, endpoint_url: str | None = None,
           api_url: str | None = None, token: str | None = None,
           state_dir: str | None = None, **options: Any) -> UploadResult:
    """Upload ``source`` to ``destination`` showing a progress bar; return the result.

    Resumes an interrupted upload of the same file to the same key. ``options`` as for
    :class:`Uploader`.
    """
    from IPython.display import display

    widget = Uploader(source, destination, control=control, endpoint_url=endpoint_url,
                      api_url=api_url, token=token, state_dir=state_dir, **options)
    display(widget)  # type: ignore[no-untyped-call]
    try:
        return widget.run()
    finally:
        widget._release()  # the bar stays on show; its buttons open again when pressed
