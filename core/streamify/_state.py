"""The resume state store: one small JSON document per upload, written atomically.

The state is only a hint: it remembers which upload id to look at, the plan used and the
source's fingerprint. S3 (ListParts) says which parts really arrived. Documents are keyed
by destination (storage endpoint, bucket, key), so a changed source is caught by its
fingerprint instead of silently starting a second upload beside the first.

A hint is never configuration: a store may be shared by many workers, so anyone who can
write one document there could name any endpoint in it. Where credentials go is what the
user configured; a state's ``endpoint`` and ``api_url`` only say which configuration its
upload belongs to, and its ``principal`` who started it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import platformdirs

from ._destination import Destination
from ._errors import StateStoreError
from ._source import Fingerprint

__all__ = ["ResumeState", "StateStore", "default_state_location"]

STATE_ENV = "STREAMIFY_STATE_DIR"

_log = logging.getLogger("streamify")


def default_state_location() -> str:
    """``$STREAMIFY_STATE_DIR`` or the user's state directory (``~/.local/state/streamify``)."""
    return os.environ.get(STATE_ENV) or platformdirs.user_state_dir("streamify")


@dataclass(frozen=True, kw_only=True)
class ResumeState:
    endpoint: str
    destination: Destination
    upload_id: str
    part_size: int
    source: str
    fingerprint: Fingerprint
    checksum: str = "none"
    created_at: float = field(default_factory=time.time)
    api_url: str | None = None
    """The Streamify API service the upload goes through (``None``: straight to S3)."""
    principal: str = ""
    """Who started the upload: the control plane's ``principal`` (the AWS access key id,
    or a digest of the API key); ``""`` when unknown, as in documents written before it
    was recorded."""

    @property
    def store_key(self) -> str:
        return state_key(self.endpoint, self.destination)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "endpoint": self.endpoint,
            "bucket": self.destination.bucket,
            "key": self.destination.key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "source": self.source,
            "fingerprint": self.fingerprint.to_json(),
            "checksum": self.checksum,
            "created_at": self.created_at,
            "api_url": self.api_url,
            "principal": self.principal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResumeState:
        return cls(
            endpoint=str(data["endpoint"]),
            destination=Destination(str(data["bucket"]), str(data["key"])),
            upload_id=str(data["upload_id"]),
            part_size=int(data["part_size"]),
            source=str(data["source"]),
            fingerprint=Fingerprint.from_json(data["fingerprint"]),
            checksum=str(data.get("checksum", "none")),
            created_at=float(data["created_at"]),
            api_url=str(data["api_url"]) if data.get("api_url") else None,
            principal=str(data.get("principal") or ""),
        )


def state_key(endpoint: str, destination: Destination) -> str:
    ident = f"{endpoint}\n{destination.bucket}\n{destination.key}".encode()
    return hashlib.sha256(ident).hexdigest()[:40]


class StateStore:
    """Resume states in a local directory or under any fsspec URL shared by many workers.

    Safe for many processes at once: every write goes to a uniquely named temporary that is
    then renamed (or moved) over the document, and the writability probe is unique per call.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None) -> None:
        self.location = os.fspath(location) if location is not None else default_state_location()
        self._local = "://" not in self.location or self.location.startswith("file://")
        if self.location.startswith("file://"):
            self.location = self.location[len("file://") :]

    def _path(self, key: str) -> str:
        return f"{self.location.rstrip('/')}/{key}.json"

    def path_of(self, state: ResumeState) -> str:
        """Where ``state``'s document lives (for messages that name it)."""
        return self._path(state.store_key)

    def ensure_writable(self) -> None:
        """Fail early, before any upload starts, if states cannot be saved here."""
        probe = self._path(f".probe-{uuid.uuid4().hex}")  # one per call: many run at once
        try:
            self._write(probe, b"{}")
            self._delete(probe)
        except OSError as exc:
            raise StateStoreError(
                f"cannot write resume state under {self.location}: {exc}; set "
                f"{STATE_ENV} or --state-dir to a writable location"
            ) from exc

    def load(self, endpoint: str, destination: Destination) -> ResumeState | None:
        path = self._path(state_key(endpoint, destination))
        try:
            raw = self._read(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateStoreError(
                f"cannot read resume state {path}: {exc}; set {STATE_ENV} or --state-dir "
                "to a readable directory") from exc
        try:
            return ResumeState.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            # A damaged hint is no loss: S3 remains the truth and discovery finds the upload.
            return None

    def save(self, state: ResumeState) -> None:
        path = self._path(state.store_key)
        try:
            self._write(path, json.dumps(state.to_json(), indent=1).encode())
        except OSError as exc:
            raise StateStoreError(
                f"cannot write resume state {path}: {self._trouble(exc)}; free space there, "
                f"or set {STATE_ENV} or --state-dir to another directory, then rerun"
            ) from exc

    def remove(self, endpoint: str, destination: Destination) -> None:
        """Forget an upload's state. A document that cannot be removed is left, with a
        warning: what it names is gone, and a later run finds that out from S3."""
        path = self._path(state_key(endpoint, destination))
        try:
            self._delete(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            if self._local and not os.path.lexists(path):
                return  # a read-only file system says so even of a file that is not there
            _log.warning("cannot remove resume state %s: %s; it names an upload that is "
                         "finished or gone (a rerun sees that in S3): remove the file once "
                         "the directory is writable again", path, self._trouble(exc))

    def _trouble(self, exc: OSError) -> str:
        """What is wrong with the store's directory, as a person would say it."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{self.location} is full ({exc.strerror})"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"{self.location} is not writable ({exc.strerror})"
        return str(exc)

    def all(self) -> list[ResumeState]:
        """Every state in the store (unfinished uploads), oldest first."""
        states = []
        for path in self._list():
            try:
                states.append(ResumeState.from_json(json.loads(self._read(path))))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(states, key=lambda s: s.created_at)

    def _read(self, path: str) -> bytes:
        if self._local:
            with open(path, "rb") as fh:
                return fh.read()
        fs, fspath = _url_to_fs(path)
        return bytes(fs.cat_file(fspath))

    def _write(self, path: str, data: bytes) -> None:
        if not self._local:
            # A uniquely named temporary, then a move: a reader sees the old document or the
            # new one, never half of one, and concurrent writers never share a temporary.
            fs, fspath = _url_to_fs(path)
            parent, name = fspath.rsplit("/", 1)
            fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{name}"
            fs.pipe_file(tmp, data)
            try:
                fs.mv(tmp, fspath)
            except BaseException:
                with contextlib.suppress(OSError):
                    fs.rm_file(tmp)
                raise
            return
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _delete(self, path: str) -> None:
        if self._local:
            os.unlink(path)
        else:
            fs, fspath = _url_to_fs(path)
            fs.rm_file(fspath)

    def _list(self) -> list[str]:
        if self._local:
            if not os.path.isdir(self.location):
                return []
            return [os.path.join(self.location, n) for n in os.listdir(self.location)
                    if n.endswith(".json") and not n.startswith(".")]
        fs, base = _url_to_fs(self.location)
        try:
            names = fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        protocol = self.location.split("://", 1)[0]
        return [f"{protocol}://{n}" for n in names
                if n.endswith(".json") and not n.rsplit("/", 1)[-1].startswith(".")]


def _url_to_fs(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of a state directory given as a URL (imported only
    then: a local directory never pays for fsspec)."""
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    return fs, str(path)
