"""Sources: anything with a size and random-access reads, plus a fingerprint.

A local file is read with ``os.pread`` (no whole-file buffering, safe from many threads);
any other URL goes through fsspec (``memory://``, ``s3://``, ``https://``...).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import urllib.parse
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ._errors import SourceError

__all__ = ["Fingerprint", "FsspecSource", "LocalFileSource", "Source", "file_name", "open_source"]

_EDGE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies a source's content without reading all of it."""

    size: int
    version: str
    """Modification time (local files) or ETag/mtime (remote)."""
    edges_sha256: str
    """SHA-256 of the first and last MiB."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(size=int(data["size"]), version=str(data["version"]),
                   edges_sha256=str(data["edges_sha256"]))


class Source(Protocol):
    """A readable byte source. ``read`` must be safe to call from several threads."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    def read(self, offset: int, size: int) -> bytes: ...

    def fingerprint(self) -> Fingerprint: ...

    def close(self) -> None:
        """Release what the source holds. Whoever opened it closes it; closing again does
        nothing."""
        ...


def _edges_hash(source: Source) -> str:
    digest = hashlib.sha256()
    digest.update(source.read(0, min(_EDGE, source.size)))
    if source.size > _EDGE:
        tail = max(_EDGE, source.size - _EDGE)
        digest.update(source.read(tail, source.size - tail))
    return digest.hexdigest()


class LocalFileSource:
    """A local file read with positional reads. ``close()`` gives its descriptor back; one
    dropped unclosed warns (``ResourceWarning``) as an unclosed file does."""

    _fd = -1  # until the file is open, and once it is closed

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._closing = threading.Lock()
        try:
            self._fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise SourceError(f"{self._path}: no such file; check the path") from exc
        except PermissionError as exc:
            raise SourceError(f"{self._path}: permission denied; cannot read the file") from exc
        except OSError as exc:
            raise SourceError(f"{self._path}: cannot open: {exc.strerror}") from exc
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode):
            self.close()
            raise SourceError(f"{self._path}: not a regular file")
        self._size = info.st_size

    @property
    def name(self) -> str:
        return self._path

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        try:
            data = os.pread(self._fd, size, offset)
        except OSError as exc:
            raise SourceError(
                f"{self._path}: read failed at byte {offset}: {exc.strerror}") from exc
        if len(data) != size:
            raise SourceError(
                f"{self._path}: file shrank while uploading (wanted {size} bytes at {offset}, "
                f"got {len(data)}); upload it again once it is no longer being written"
            )
        return data

    def fingerprint(self) -> Fingerprint:
        size, version = self.stat()
        return Fingerprint(size=size, version=version, edges_sha256=_edges_hash(self))

    def stat(self) -> tuple[int, str]:
        """The size and version of the fingerprint, without reading a byte."""
        info = os.fstat(self._fd)
        return info.st_size, str(info.st_mtime_ns)

    def close(self) -> None:
        # Once closed, the number may already name another file: never close it again.
        with self._closing:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self.close()

    def __repr__(self) -> str:
        return f"LocalFileSource({self._path!r})"


class FsspecSource:
    """Any fsspec URL. Reads are ranged (``cat_file`` with start/end), never the whole file.

    It holds nothing of its own to close: the fsspec filesystem is fsspec's, shared."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec.core  # only a URL source needs it (and its import costs 40 ms)

        self._url = url
        try:
            self._fs, self._path = fsspec.core.url_to_fs(url, **storage_options)
            self._info: dict[str, Any] = self._fs.info(self._path)
        except FileNotFoundError as exc:
            raise SourceError(f"{url}: no such file; check the URL") from exc
        except (ImportError, ValueError) as exc:
            raise SourceError(f"{url}: cannot open this URL: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"{url}: cannot read: {exc}") from exc
        if self._info.get("type") == "directory":
            raise SourceError(f"{url}: is a directory, not a file")
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._url

    @property
    def size(self) -> int:
        return int(self._info["size"])

    def read(self, offset: int, size: int) -> bytes:
        if size == 0:
            return b""
        try:
            data: bytes = self._fs.cat_file(self._path, start=offset, end=offset + size)
        except OSError as exc:
            raise self._unreadable(f"read failed at byte {offset}", exc) from exc
        if len(data) != size:
            raise SourceError(f"{self._url}: short read at byte {offset}; the source changed")
        return data

    def fingerprint(self) -> Fingerprint:
        with self._lock:
            self._fs.invalidate_cache(self._path)
            try:
                info = self._fs.info(self._path)
            except OSError as exc:
                raise self._unreadable("cannot be found again", exc) from exc
        version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("created")
        return Fingerprint(size=int(info["size"]), version=str(version or ""),
                           edges_sha256=_edges_hash(self))

    def _unreadable(self, what: str, exc: OSError) -> SourceError:
        """The error for a source that went away (or out of reach) during an upload: the
        parts S3 holds stay, so the way on is a rerun once it is back."""
        gone = "it is gone" if isinstance(exc, FileNotFoundError) else "it cannot be read"
        return SourceError(f"{self._url}: {what} ({gone}: {exc}); the parts already sent "
                           "stay in S3: once the file is back, rerun to resume")

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"FsspecSource({self._url!r})"


def open_source(location: str | os.PathLike[str] | Source) -> Source:
    """Open a local path, a ``file://`` URL or any fsspec URL as a :class:`Source`."""
    if not isinstance(location, str | os.PathLike):
        return location
    text = os.fspath(location)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        return FsspecSource(text)
    return LocalFileSource(text)


def file_name(location: str | os.PathLike[str]) -> str:
    """The file name a path or fsspec URL ends in: of a URL, the last component of its
    path, without its query or fragment (a presigned ``https://`` source's signature must
    never become part of a key); of a chained URL (``simplecache::https://...``), of its
    last link."""
    text = os.fspath(location).rsplit("::", 1)[-1]
    if "://" in text:
        text = urllib.parse.urlsplit(text).path
    return text.rstrip("/").rsplit("/", 1)[-1]
