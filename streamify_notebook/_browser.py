"""``BrowserUploader``: the browser sends a file from the analyst's machine straight to S3.

The kernel holds the control plane and answers the browser's small JSON requests; the
bytes go from the browser to S3 through presigned URLs and never cross the websocket. What
to resume, how the file is cut and how failures are retried are the core's decisions; the
page only reads, hashes and PUTs.

``look``     {} -> {}: say which files have unfinished uploads at the destination (shown
             in ``detail``), so that after a reload the analyst knows what to choose
``open``     {name, size, upload_id?, part_size?, md5s?: [[offset, size, hex]]} ->
             either {hash: [[offset, size]]}: hash these ranges of the file and open again
             with their ``md5s``; or {upload_id, key, parts: [[offset, size]] (part n is
             item n-1), present: [{number, etag, size}], retry: the core's retry table}
``sign``     {upload_id, parts: [{number, size, md5}]} -> {parts: [{number, url, headers}]}
``complete`` {upload_id, size, parts: [{number, etag, size}]} -> {size, etag}
``abort``    {upload_id} -> {}

Every answer carries the request's ``id``, and ``error`` (plain words) instead when the
control plane refused.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import traitlets
from streamify import (
    ControlPlane,
    Create,
    Destination,
    HttpControlPlane,
    ListedFacts,
    NeedHashes,
    PartPlan,
    PartToSign,
    RangeHashes,
    Refuse,
    UploadConfig,
    UploadedPart,
    UploadGoneError,
    complete_upload,
    decide_listed,
    retrying,
)

from ._errors import plain_error
from ._subshells import as_the_page_addresses
from ._widget import UploadWidget, make_control

__all__ = ["BrowserUploader"]

_MiB = 1024 * 1024


class BrowserUploader(UploadWidget):
    """Uploads a file chosen in the browser to ``destination``: ``s3://bucket/key``, or
    ``s3://bucket/prefix/`` to keep the file's own name.

    The browser reads the file in slices, computes each part's MD5 (signed into the URL as
    Content-MD5), PUTs parts in parallel straight to S3 with retries, and remembers the
    upload in its local storage: after a page reload or a kernel restart, choosing the same
    file again resumes, sending only the parts S3 does not hold. The bucket needs a CORS
    rule for the notebook's origin (``streamify setup-bucket s3://bucket --cors-origin
    https://jupyter.example``).

    Without ``control``, the kernel's AWS credentials drive S3 (``endpoint_url`` for
    S3-compatible storage), or the API service at ``api_url`` with the API key ``token``.
    ``options`` are :class:`streamify.UploadConfig` fields; ``part_size``, ``concurrency``,
    ``max_attempts``, ``retry_for``, ``backoff_base``, ``backoff_max``, ``bwlimit``,
    ``url_expiry`` and ``content_type`` apply in the browser.
    """

    file_name = traitlets.Unicode("").tag(sync=True)
    """The chosen file's name (set by the browser)."""
    parts_sent = traitlets.Int(0).tag(sync=True)
    """Parts this page PUT successfully (set by the browser)."""
    parts_resumed = traitlets.Int(0).tag(sync=True)
    """Parts S3 already held when the upload was opened (set by the browser)."""
    concurrency = traitlets.Int(4).tag(sync=True)
    bwlimit = traitlets.Int(0).tag(sync=True)
    """Bytes per second for this page's uploads; 0 for no limit."""

    _own_control = False  # for close() on a widget whose construction failed

    def __init__(self, destination: str = "", *, control: ControlPlane | None = None,
                 endpoint_url: str | None = None, api_url: str | None = None,
                 token: str | None = None, **options: Any) -> None:
        config = UploadConfig.from_options(**options)
        self.control: ControlPlane = make_control(control, endpoint_url=endpoint_url,
                                                  api_url=api_url, token=token)
        super().__init__(kind="browser", destination=destination,
                         concurrency=config.concurrency, bwlimit=config.bwlimit or 0)
        self.config = config
        self._own_control = control is None
        # Every call to storage or the API service rides out outages under the budget.
        self._calls = retrying(self.control, config)
        # The page's requests are answered in the subshell it sends them to, so an upload
        # goes on while a cell runs; a request sent before that subshell existed is answered
        # in the main shell. One answer at a time, whichever thread it is in.
        self._answering = threading.Lock()
        as_the_page_addresses(self.comm)
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
            if request.get("op") == "look":
                unfinished = self._unfinished()
                if self.status == "ready":
                    self.detail = unfinished
                return {"id": request.get("id")}
            operation = operations[str(request.get("op"))]
            answer = operation(self.target(str(request["name"])), request)
        except Exception as exc:
            return {"id": request.get("id"),
                    "error": plain_error(exc, service=isinstance(self.control,
                                                                 HttpControlPlane))}
        return {"id": request.get("id"), **answer}

    def _on_request(self, _widget: object, content: dict[str, Any],
                    _buffers: Sequence[bytes]) -> None:
        with self._answering:
            self.send(self.answer(content))

    def _unfinished(self) -> str:
        """Which files have an unfinished upload at the destination, and how much of each S3
        holds: after a reload, the page knows nothing until a file is chosen."""
        destination = Destination.parse(self.destination)
        held: list[str] = []
        names: list[str] = []
        for upload in self._calls.list_uploads(destination):
            where = upload.destination
            if not destination.is_prefix and where.key != destination.key:
                continue
            name = where.key.rsplit("/", 1)[-1]
            size = sum(p.size for p in self._calls.list_parts(where, upload.upload_id))
            names.append(name)
            held.append(f"{name} ({size / _MiB:.1f} MiB in S3)")
        if not held:
            return ""
        which = names[0] if len(names) == 1 else "one of these files"
        return (f"unfinished upload{'s' if len(held) > 1 else ''} here: {', '.join(held)}; "
                f"choose {which} to resume it")

    def _open(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        name, size = str(request["name"]), int(request["size"])
        upload_id = str(request.get("upload_id") or "") or None
        part_size = int(request["part_size"]) if upload_id and request.get("part_size") else None
        listed: list[UploadedPart] | None = None
        if upload_id is None:
            found = [u for u in self._calls.list_uploads(where) if u.destination == where]
            upload_id = found[-1].upload_id if found else None
        if upload_id is not None:
            try:
                listed = self._calls.list_parts(where, upload_id)
            except UploadGoneError:
                listed = None
        hashes = {(int(offset), int(length)): RangeHashes(str(md5), None)
                  for offset, length, md5 in request.get("md5s") or []}
        decision = decide_listed(ListedFacts(
            source_name=name, destination=where, size=size, config=self.config,
            upload_id=upload_id, listed=listed, part_size=part_size, hashes=hashes))
        if isinstance(decision, NeedHashes):
            return {"hash": [list(r) for r in decision.ranges]}
        if isinstance(decision, Refuse):
            raise decision.error
        plan: PartPlan = decision.plan
        present: list[UploadedPart] = []
        if isinstance(decision, Create):
            upload_id = self._calls.create_upload(
                where, content_type=self.config.content_type, metadata={},
                checksum="none", size=size)
        else:
            upload_id, present = decision.upload_id, sorted(decision.keep.values(),
                                                              key=lambda p: p.number)
        self.file_name, self.total_bytes, self.error = name, size, ""
        return {"upload_id": upload_id, "key": where.key, "part_size": plan.part_size,
                "parts": [[part.offset, part.size] for part in plan],
                "present": [{"number": p.number, "etag": p.etag, "size": p.size}
                            for p in present],
                "retry": self.config.retry_budget().table()}

    def _sign(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        parts = [PartToSign(int(p["number"]), int(p["size"]), str(p["md5"]))
                 for p in request["parts"]]
        signed = self._calls.sign_parts(where, str(request["upload_id"]), parts,
                                         expires_in=self.config.url_expiry)
        return {"parts": [{"number": s.number, "url": s.url, "headers": dict(s.headers)}
                          for s in signed]}

    def _complete(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        parts = sorted((UploadedPart(int(p["number"]), str(p["etag"]), int(p["size"]))
                        for p in request["parts"]), key=lambda p: p.number)
        # Every ETag the page sends is the part's MD5: it checked each PUT's answer, and
        # the core kept only parts whose MD5 the page computed from the file.
        info = complete_upload(self._calls, where, str(request["upload_id"]),
                               int(request["size"]), parts, str(request["name"]))
        self.bytes_done, self.status = info.size, "completed"
        return {"size": info.size, "etag": info.etag}

    def _abort(self, where: Destination, request: dict[str, Any]) -> dict[str, Any]:
        self._calls.abort(where, str(request["upload_id"]))
        self.status = "cancelled"
        return {}
