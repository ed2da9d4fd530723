"""What both upload widgets share: the browser module, and the state the view draws."""

from __future__ import annotations

import pathlib

import anywidget
import traitlets

__all__ = ["UploadWidget"]

_HERE = pathlib.Path(__file__).parent


class UploadWidget(anywidget.AnyWidget):
    """Holds an upload's state; ``widget.js`` (beside this file) draws it and sends commands.

    ``status`` is one of ``ready``, ``starting``, ``uploading``, ``pausing``, ``paused``,
    ``cancelling``, ``cancelled``, ``completed`` and ``failed``.
    """

    _esm = _HERE / "widget.js"
    _css = _HERE / "widget.css"

    kind = traitlets.Unicode("kernel").tag(sync=True)
    destination = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("ready").tag(sync=True)
    bytes_done = traitlets.Int(0).tag(sync=True)
    total_bytes = traitlets.Int(0).tag(sync=True)
    bytes_per_second = traitlets.Float(0.0).tag(sync=True)
    seconds_left = traitlets.Float(None, allow_none=True).tag(sync=True)
    detail = traitlets.Unicode("").tag(sync=True)
    """A line about what happened besides progress (resumed, retrying, completed)."""
    error = traitlets.Unicode("").tag(sync=True)
    """Plain words about why the upload stopped; empty while all is well."""
