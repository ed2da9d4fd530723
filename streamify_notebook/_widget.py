"""What both upload widgets share: the browser module, and the state the view draws."""

from __future__ import annotations

import pathlib

import anywidget
import traitlets
from streamify import ConfigError, ControlPlane, HttpControlPlane, S3ControlPlane

__all__ = ["UploadWidget", "make_control"]

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


def make_control(control: ControlPlane | None, *, endpoint_url: str | None,
                 api_url: str | None, token: str | None, pool: int = 10) -> ControlPlane:
    """The control plane a widget was given, or the one its arguments name: the API service
    at ``api_url`` with the API key ``token``, else S3 (at ``endpoint_url``) with the
    kernel's AWS credentials."""
    if control is not None:
        return control
    if api_url:
        if not token:
            raise ConfigError(f"api_url {api_url!r} needs token=<API key>", parameter="token")
        return HttpControlPlane(api_url, token=token, pool_size=pool)
    return S3ControlPlane(endpoint_url=endpoint_url, max_pool_connections=pool)
