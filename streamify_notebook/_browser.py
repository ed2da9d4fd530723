"""``BrowserUploader``: the browser sends a file from the analyst's machine straight to S3.

The kernel holds the control plane and answers the browser's small JSON requests; the
bytes go from the browser to S3 through presigned URLs and never cross the websocket:

``open``     {name, size, upload_id?, part_size?} -> {upload_id, key, part_size, parts,
             present: [{number, etag, size}]}: resume the browser's remembered upload if S3
             still has it (ListParts), otherwise plan the parts and start a new one
``sign``     {upload_id, parts: [{number, size, md5}]} -> {parts: [{number, url, headers}]}
``complete`` {upload_id, parts: [{number, etag, size}]} -> {size, etag}
``abort``    {upload_id} -> {}

Every answer carries the request's ``id``, and ``error`` (plain words) instead when the
control plane refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets
from streamify import (
    ControlPlane,
    Destination,
    IntegrityError,
    PartPlan,
    PartToSign,
    S3ControlPlane,
    UploadConfig,
    UploadedPart,
    UploadGoneError,
    plan_parts,
)

from ._errors import plain_error
from ._widget import UploadWidget

__all__ = ["BrowserUploader"]


class BrowserUploader(UploadWidget):
    """Uploads a file chosen in the browser to ``destination``: ``s3://bucket/key``, or
    ``s3://bucket/prefix/`` to keep the file's own name.

    The browser reads the file in slices, computes each part's MD5 (signed into the URL as
    Content-MD5), PUTs parts in parallel straight to S3 with retries, and remembers the
    upload in its local storage: after a page reload, choosing the same file again resumes,
    sending only the parts S3 does not hold. The bucket needs a CORS rule for the notebook's
    origin (``streamify setup-bucket s3://bucket --cors-origin https://jupyter.example``).

    ``options`` are :class:`streamify.UploadConfig` fields; ``part_size``, ``concurrency``,
    ``max_attempts``, ``backoff_base``, ``backoff_max``, ``bwlimit``, ``url_expiry`` and
    ``content_type`` apply in the browser.
    """

    file_name = traitlets.Unicode("").tag(sync=True)
    """The chosen file's name (set by the browser)."""
    parts_sent = traitlets.Int(0).tag(sync=True)
    """Parts this page PUT successfully (set by the browser)."""
    parts_resumed = traitlets.Int(0).tag(sync=True)
    """Parts S3 already held when the upload was opened (set by the browser)."""
    concurrency = traitlets.Int(4).tag(sync=True)
    max_attempts = traitlets.Int(20).tag(sync=True)
    backoff_base = traitlets.Float(0.25).tag(sync=True)
    backoff_max = traitlets.Float(20.0).tag(sync=True)
    bwlimit = traitlets.Int(0).tag(sync=True)
    """Bytes per second for this page's uploads; 0 for no limit."""

    def __init__(self, destination: str = "", *, control: ControlPlane | None = None,
                 endpoint_url: str | None = None, **options: Any) -> None:
        config = UploadConfig.from_options(**options)
        super().__init__(kind="browser", destination=destination,
                         concurrency=config.concurrency, max_attempts=config.max_attempts,
                         backoff_base=config.backoff_base, backoff_max=config.backoff_max,
                         bwlimit=config.bwlimit or 0)
        self.config = config
        self._own_control = control is None
        self.control: ControlPlane = control or S3ControlPlane(endpoint_url=endpoint_url)
        self.on_msg(self._on_request)

    def close(self) -> None:
        """Close the widget and the S3 client it made (not a ``control`` passed in).
        Closing again does nothing."""
        if self._own_control:
            self._own_control = False
            self.control.close()
        super().close()

    def target(self, file_name: str) -> Destination:
        """Where a file of this name goes."""
        destination = Destination.parse(self.destination)
        return destination.child(file_name) if destination.is_prefix else destination

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request from the browser (see the module docstring)."""
        operations = {"open": self._open, "sign": self._sign, "complete": self._complete,
                      "abort": self._abort}
        try:
            operation = operations[str(request.get("op"))]
            answer = operation(self.target(str(request["name"])), request)
        except Exception as exc:
            return {"id": request.get("id"), "error": plain_error(exc)}
        return {"id": request.get("id"), **answer}

    def _on_request(self, _widget: object, content: dict[str, Any],
                    _buffers: Sequence[bytes]) -> None:
        self.send(self.answer(content))

    def _open(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        size = int(request["size"])
        upload_id = str(request.get("upload_id") or "")
        present: list[UploadedPart] = []
        plan: PartPlan | None = None
        if upload_id and request.get("part_size"):
            try:
                present = self.control.list_parts(where, upload_id)
            except UploadGoneError:
                upload_id = ""
            else:
                # The plan the upload was started with, as the browser recorded it.
                plan = PartPlan(size=size, part_size=int(request["part_size"]))
        if plan is None or not upload_id:
            plan = plan_parts(size, self.config.part_size)
            upload_id = self.control.create_upload(
                where, content_type=self.config.content_type, metadata={},
                checksum="none", size=size)
            present = []
        self.file_name, self.total_bytes, self.error = str(request["name"]), size, ""
        kept = [p for p in present
                if p.number <= plan.count and p.size == plan.part(p.number).size]
        return {"upload_id": upload_id, "key": where.key, "part_size": plan.part_size,
                "parts": plan.count,
                "present": [{"number": p.number, "etag": p.etag, "size": p.size}
                            for p in kept]}

    def _sign(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        parts = [PartToSign(int(p["number"]), int(p["size"]), str(p["md5"]))
                 for p in request["parts"]]
        signed = self.control.sign_parts(where, str(request["upload_id"]), parts,
                                         expires_in=self.config.url_expiry)
        return {"parts": [{"number": s.number, "url": s.url, "headers": dict(s.headers)}
                          for s in signed]}

    def _complete(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        parts = sorted((UploadedPart(int(p["number"]), str(p["etag"]), int(p["size"]))
                        for p in request["parts"]), key=lambda p: p.number)
        size = sum(p.size for p in parts)
        info = self.control.complete(where, str(request["upload_id"]), parts)
        if info.size != size:
            raise IntegrityError(f"{where} was assembled with {info.size} bytes instead of the "
                             f"{size} sent; delete it and upload again")
        self.bytes_done, self.status = info.size, "completed"
        return {"size": info.size, "etag": info.etag}

    def _abort(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        self.control.abort(where, str(request["upload_id"]))
        self.status = "cancelled"
        return {}
