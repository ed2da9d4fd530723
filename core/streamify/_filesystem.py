"""``StreamifyFileSystem``: fsspec's ``streamify://`` protocol.

Writes (``put``, ``put_file``, ``pipe``, ``pipe_file``, ``open(..., "wb")``, ``touch``) go
through the resumable engine: parallel parts with Content-MD5, retries, verification, and
for files a resume when the same ``put`` is repeated after a crash. Reads and listings are
s3fs's (direct mode, S3 credentials); with the API service (``api_url``), which holds the
credentials, only what the service offers is available: ``info``, ``exists``, ``isdir``,
``ls`` and ``find`` of the caller's own completed objects (``GET /v1/objects``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from glob import has_magic
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import fsspec
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.implementations.local import LocalFileSystem, make_path_posix, trailing_sep
from fsspec.spec import AbstractFileSystem
from fsspec.utils import other_paths

from . import _events as ev
from ._config import UploadConfig
from ._control import ControlPlane
from ._destination import Destination
from ._engine import Uploader, UploadResult
from ._errors import (
    AccessDeniedError,
    ConfigError,
    DestinationError,
    StreamifyError,
    TransferError,
)
from ._snapshot import PrefixSnapshot, take_snapshot
from ._state import StateStore
from ._stream import StreamWriter
from ._throttle import Throttle
from ._transport import PartSender

if TYPE_CHECKING:
    from ._httpcontrol import HttpControlPlane, ListedObject

__all__ = ["StreamedFile", "StreamifyFileSystem"]

_T = TypeVar("_T")


class StreamifyFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Files in S3 under ``streamify://bucket/key``, written by Streamify's engine.

    Direct mode takes s3fs's connection options (``endpoint_url``, ``key``, ``secret``,
    ``token`` for a session token, ``client_kwargs``, ``config_kwargs``, ``profile``);
    with ``api_url`` the writes go through the Streamify API service and ``token`` is its
    API key. Every other keyword is an :class:`UploadConfig` option (``part_size="16MiB"``,
    ``concurrency=8``, ``checksum="sha256"``...). ``batch_size`` files of a ``put`` upload
    at once over one connection pool, so peak memory is about
    ``batch_size x concurrency x part_size``. ``state_dir`` is where resume states live
    (default ``$STREAMIFY_STATE_DIR`` or the user's state directory).

    Constructing it does no I/O.
    """

    protocol = "streamify"
    root_marker = ""

    def __init__(self, *, endpoint_url: str | None = None, key: str | None = None,
                 secret: str | None = None, token: str | None = None,
                 client_kwargs: dict[str, Any] | None = None,
                 config_kwargs: dict[str, Any] | None = None, profile: str | None = None,
                 api_url: str | None = None, state_dir: str | None = None,
                 batch_size: int = 4, **upload_options: Any) -> None:
        super().__init__()
        self.client_kwargs = dict(client_kwargs or {})
        self.endpoint_url = endpoint_url or self.client_kwargs.pop("endpoint_url", None)
        self.key, self.secret, self.token, self.profile = key, secret, token, profile
        self.config_kwargs = dict(config_kwargs or {})
        self.api_url = api_url
        if api_url is not None:
            if not token:
                raise ConfigError(f"api_url {api_url!r} needs token=<API key>")
            direct_only = [name for name, value in (
                ("endpoint_url", self.endpoint_url), ("key", key), ("secret", secret),
                ("client_kwargs", client_kwargs), ("config_kwargs", config_kwargs),
                ("profile", profile)) if value]
            if direct_only:
                raise ConfigError(f"{', '.join(direct_only)} are S3 settings of direct mode; "
                                  "with api_url the API service holds the credentials")
        if batch_size < 1:
            raise ConfigError(f"batch_size {batch_size} must be at least 1")
        self.batch_size = batch_size
        self.config = UploadConfig.from_options(**upload_options)
        self.state = StateStore(state_dir)
        self._lock = threading.Lock()
        self._control: ControlPlane | None = None
        self._sender: PartSender | None = None
        self._s3: Any = None

    # ------------------------------------------------------------------ collaborators
    @property
    def control(self) -> ControlPlane:
        """The control plane of every write (created on first use)."""
        with self._lock:
            if self._control is None:
                self._control = self._make_control()
            return self._control

    @property
    def sender(self) -> PartSender:
        """The one connection pool all part uploads of this filesystem share."""
        with self._lock:
            if self._sender is None:
                throttle = Throttle(self.config.bwlimit) if self.config.bwlimit else None
                self._sender = PartSender(
                    pool_size=self.config.concurrency * self.batch_size,
                    connect_timeout=self.config.connect_timeout,
                    read_timeout=self.config.read_timeout, throttle=throttle)
            return self._sender

    def _make_control(self) -> ControlPlane:
        pool = max(10, self.config.concurrency * self.batch_size)
        if self.api_url is not None:
            from ._httpcontrol import HttpControlPlane

            return HttpControlPlane(self.api_url, token=self.token or "", pool_size=pool)
        import boto3

        from ._s3control import S3ControlPlane

        session = boto3.Session(aws_access_key_id=self.key, aws_secret_access_key=self.secret,
                                aws_session_token=self.token, profile_name=self.profile)
        return S3ControlPlane(endpoint_url=self.endpoint_url, max_pool_connections=pool,
                              session=session, client_kwargs=self.client_kwargs)

    def _direct(self, operation: str) -> Any:
        """The s3fs filesystem behind reads and listings; only direct mode has one."""
        if self.api_url is not None:
            raise NotImplementedError(
                f"streamify: {operation} needs direct mode: the API service at {self.api_url} "
                "signs uploads and lists your completed objects (info, exists, ls, find), "
                "nothing more; construct "
                "StreamifyFileSystem(endpoint_url=..., key=..., secret=...) with S3 "
                f"credentials to {operation}")
        with self._lock:
            if self._s3 is None:
                import s3fs

                # Streamify's own client settings, so reads reach the same servers writes do.
                config_kwargs: dict[str, Any] = {
                    "request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required"}
                if self.endpoint_url:
                    config_kwargs["s3"] = {"addressing_style": "path"}
                config_kwargs.update(self.config_kwargs)
                self._s3 = s3fs.S3FileSystem(
                    endpoint_url=self.endpoint_url, key=self.key, secret=self.secret,
                    token=self.token, profile=self.profile, client_kwargs=self.client_kwargs,
                    config_kwargs=config_kwargs, skip_instance_cache=True)
            return self._s3

    def _written(self, path: str) -> None:
        """Forget s3fs's cached listings of ``path``: the engine wrote behind its back."""
        if self._s3 is not None:
            self._s3.invalidate_cache(path)

    def _destination(self, path: str) -> Destination:
        bucket, _, key = self._strip_protocol(path).partition("/")
        if not bucket or not key:
            raise DestinationError(f"streamify://{path} names no object: use "
                                   "streamify://bucket/key")
        return Destination.parse(f"s3://{bucket}/{key}")

    # ------------------------------------------------------------------ writes
    def put_file(self, lpath: str | os.PathLike[str], rpath: str,
                 callback: Any = DEFAULT_CALLBACK, mode: str = "overwrite", *,
                 metadata: dict[str, str] | None = None, **kwargs: Any) -> UploadResult | None:
        """Upload one file (a local path or any fsspec URL) with the engine, resuming an
        upload of the same file that an earlier, interrupted ``put`` left open.

        An object that already holds exactly this file (same size and composite ETag) is
        not sent again (``if_exists`` option). Returns what the upload did (``None`` for a
        directory).
        """
        if kwargs:
            raise TypeError(f"put_file got unknown options: {', '.join(sorted(kwargs))}")
        return self._put_file(lpath, rpath, callback, mode, metadata, [])

    def _put_target(self, location: str, target: str) -> str:
        """Where ``location`` goes: ``target``, or under it when it names a folder."""
        rpath = str(self._strip_protocol(target))
        if target.endswith("/") or "/" not in rpath:
            rpath = f"{rpath}/{os.path.basename(location.rstrip('/'))}"
        return rpath

    def _put_file(self, lpath: str | os.PathLike[str], target: str, callback: Any, mode: str,
                  metadata: dict[str, str] | None, running: list[Uploader],
                  snapshot: PrefixSnapshot | None = None) -> UploadResult | None:
        location = os.fspath(lpath)
        if "://" not in location and os.path.isdir(location):
            return None  # S3 has no directories: a prefix exists once a file is under it
        rpath = self._put_target(location, target)
        destination = self._destination(rpath)
        if mode == "create" and self.exists(rpath):
            raise FileExistsError(f"streamify://{rpath} exists and mode='create'")
        try:
            # The uploader opens the file, and closes it; the sender is this filesystem's.
            with Uploader(location, destination, control=self.control, config=self.config,
                          state=self.state, sender=self.sender, metadata=metadata,
                          snapshot=snapshot) as uploader:
                uploader.subscribe(_CallbackProgress(callback))
                running.append(uploader)
                try:
                    result = uploader.run()
                finally:
                    running.remove(uploader)
        finally:
            self._written(rpath)
        if result.status != "completed":
            raise TransferError(f"upload of {location} to {destination} was paused; repeat "
                                "the same put to resume it")
        return result

    def put(self, lpath: str | list[str], rpath: str | list[str], recursive: bool = False,
            callback: Any = DEFAULT_CALLBACK, maxdepth: int | None = None,
            batch_size: int | None = None, **kwargs: Any) -> None:
        """Upload files and directory trees (``recursive=True``), ``batch_size`` files at
        a time over one connection pool. Repeating the same ``put`` after a crash sends
        only what is missing: finished files are recognised, open uploads resumed.

        Paths expand as in every fsspec filesystem; sources may also be fsspec URLs.
        """
        mode = kwargs.pop("mode", "overwrite")
        metadata = kwargs.pop("metadata", None)
        if kwargs:
            raise TypeError(f"put got unknown options: {', '.join(sorted(kwargs))}")
        pairs = self._put_pairs(lpath, rpath, recursive, maxdepth)
        callback.set_size(len(pairs))
        lock = threading.Lock()
        running: list[Uploader] = []
        # One listing of the prefix instead of a HEAD per file, where that is cheaper.
        snapshot = (take_snapshot(self.control, [
            self._destination(self._put_target(source, target)) for source, target in pairs])
            if self.config.if_exists == "skip_identical" else None)

        def one(source: str, target: str) -> None:
            with callback.branched(source, target) as child:
                self._put_file(source, target, child, mode, metadata, running, snapshot)
            with lock:
                callback.relative_update(1)

        pool = ThreadPoolExecutor(batch_size or self.batch_size,
                                  thread_name_prefix="streamify-file")
        futures: dict[Future[None], str] = {
            pool.submit(one, source, target): source for source, target in pairs}
        try:
            wait(futures)
        except BaseException:
            # Ctrl-C: finish the parts in flight, start nothing new; a repeat resumes.
            for uploader in list(running):
                uploader.pause()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
        failed = [(source, future.exception()) for future, source in futures.items()
                  if future.exception() is not None]
        if len(failed) == 1 and len(pairs) == 1:
            raise failed[0][1]  # type: ignore[misc]
        if failed:
            first_source, first = failed[0]
            raise StreamifyError(
                f"{len(failed)} of {len(pairs)} files failed to upload (first, {first_source}: "
                f"{first}); repeat the same put to resume them") from first

    def _put_pairs(self, lpath: str | list[str], rpath: str | list[str], recursive: bool,
                   maxdepth: int | None) -> list[tuple[str, str]]:
        """(source, target) for every file, expanded exactly as fsspec's own ``put``."""
        if isinstance(lpath, list) and isinstance(rpath, list):
            return [(s, t) for s, t in zip(lpath, rpath, strict=True)
                    if "://" in s or not os.path.isdir(s)]
        source_is_str = isinstance(lpath, str)
        first = lpath if isinstance(lpath, str) else (lpath[0] if lpath else "")
        if "://" in first and not first.startswith("file://"):
            source_fs, _ = fsspec.core.url_to_fs(first)
            stripped = source_fs._strip_protocol(lpath)
            # Keep a trailing "/" (copy the folder's contents): stripping drops it.
            if isinstance(lpath, str) and lpath.endswith("/") and not stripped.endswith("/"):
                stripped += "/"
            lpath = stripped
        else:
            source_fs = LocalFileSystem()
            if isinstance(lpath, str):
                lpath = make_path_posix(lpath)
        lpaths = source_fs.expand_path(lpath, recursive=recursive, maxdepth=maxdepth)
        if source_is_str and (not recursive or maxdepth is not None):
            # A non-recursive glob copies no directories.
            lpaths = [p for p in lpaths if not (trailing_sep(p) or source_fs.isdir(p))]
            if not lpaths:
                return []
        dest_is_dir = isinstance(rpath, str) and (trailing_sep(rpath) or self.isdir(rpath))
        rpath = self._strip_protocol(rpath)
        magic = isinstance(lpath, str) and has_magic(lpath)
        exists = source_is_str and ((magic and len(lpaths) == 1) or (
            not magic and dest_is_dir and not trailing_sep(lpath)))
        rpaths = other_paths(lpaths, rpath, exists=exists, flatten=not source_is_str)
        files = [(s, t) for s, t in zip(lpaths, rpaths, strict=True) if not source_fs.isdir(s)]
        if isinstance(source_fs, LocalFileSystem):
            return files
        return [(source_fs.unstrip_protocol(s), t) for s, t in files]

    # ------------------------------------------------------------------ reads and listings
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        if self.api_url is None:
            return list(self._direct("ls").ls(self._strip_protocol(path), detail=detail,
                                              **kwargs))
        bucket, key = self._api_split(path)
        found = self._api_object(bucket, key)
        if found is not None:
            entries = [found]
        else:
            entries = self._api_children(bucket, key)
            if not entries:
                raise FileNotFoundError(f"streamify://{self._strip_protocol(path)}: no "
                                        "object at or under this path")
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        if self.api_url is None:
            return dict(self._direct("info").info(self._strip_protocol(path), **kwargs))
        bucket, key = self._api_split(path)
        found = self._api_object(bucket, key)
        if found is not None:
            return found
        if next(self._api_listing(bucket, key), None) is not None:
            return {"name": self._strip_protocol(path).rstrip("/"), "size": 0,
                    "type": "directory"}
        raise FileNotFoundError(f"streamify://{self._strip_protocol(path)}: no object at or "
                                "under this path")

    def exists(self, path: str, **kwargs: Any) -> bool:
        if self.api_url is None:
            return bool(self._direct("exists").exists(self._strip_protocol(path), **kwargs))
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def isdir(self, path: str) -> bool:
        if self.api_url is None:
            return bool(self._direct("isdir").isdir(self._strip_protocol(path)))
        try:
            return bool(self.info(path)["type"] == "directory")
        except (FileNotFoundError, PermissionError):
            return False

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        if self.api_url is None:
            return self._direct("find").find(self._strip_protocol(path), maxdepth=maxdepth,
                                             withdirs=withdirs, detail=detail, **kwargs)
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        bucket, key = self._api_split(path)
        found: dict[str, dict[str, Any]] = {}
        single = self._api_object(bucket, key)
        if single is not None:
            found[single["name"]] = single
        else:
            base = self._strip_protocol(path).rstrip("/")
            for listed in self._api_listing(bucket, key):
                relative = listed.destination.key[len(_folder(key)):]
                folders = relative.split("/")[:-1]
                if withdirs:
                    for depth in range(1, len(folders) + 1):
                        if maxdepth is None or depth <= maxdepth:
                            name = "/".join([base, *folders[:depth]])
                            found[name] = {"name": name, "size": 0, "type": "directory"}
                if relative and (maxdepth is None or len(folders) < maxdepth):
                    entry = _listed_entry(listed)
                    found[entry["name"]] = entry
            if withdirs and found:
                found[base] = {"name": base, "size": 0, "type": "directory"}
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    # The API service offers one object's size and ETag (GET /v1/objects?key=) and the
    # caller's completed objects under a prefix (GET /v1/objects?prefix=), nothing else.
    def _api_split(self, path: str) -> tuple[str, str]:
        bucket, _, key = self._strip_protocol(path).partition("/")
        return bucket, key

    @property
    def _service(self) -> HttpControlPlane:
        from ._httpcontrol import HttpControlPlane

        control = self.control
        assert isinstance(control, HttpControlPlane), "API mode has an HttpControlPlane"
        return control

    def _api_object(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object at ``key`` (``None``: none, or ``key`` names a folder)."""
        if not key or key.endswith("/"):
            return None
        try:
            found = self._service.head(Destination(bucket, key))
        except AccessDeniedError:
            # "users/alice" is outside the prefix "users/alice/" as an object, yet it is
            # that folder: the listing decides, and refuses what is truly another's.
            return None
        if found is None:
            return None
        return {"name": f"{bucket}/{key}", "size": found.size, "type": "file",
                "ETag": found.etag}

    def _api_listing(self, bucket: str, key: str) -> Iterator[ListedObject]:
        """Every completed object under the folder ``key`` (``""``: the bucket)."""
        listed = self._service.list_objects(Destination(bucket, _folder(key)))
        first = self._denied_as_permission(lambda: next(listed, None), bucket, key)
        if first is not None:
            yield first
            yield from listed

    def _api_children(self, bucket: str, key: str) -> list[dict[str, Any]]:
        """What ``ls`` shows of the folder ``key``: its objects and its sub-folders."""
        entries: dict[str, dict[str, Any]] = {}
        for listed in self._api_listing(bucket, key):
            relative = listed.destination.key[len(_folder(key)):]
            if not relative:
                continue  # a folder marker: the folder itself
            child, slash, _ = relative.partition("/")
            name = f"{bucket}/{_folder(key)}{child}"
            if slash:
                entries[name] = {"name": name, "size": 0, "type": "directory"}
            else:
                entries[name] = _listed_entry(listed)
        return [entries[name] for name in sorted(entries)]

    def _denied_as_permission(self, call: Callable[[], _T], bucket: str, key: str) -> _T:
        try:
            return call()
        except AccessDeniedError as exc:
            raise PermissionError(
                f"streamify://{bucket}/{key}: the API service at {self.api_url} lists and "
                f"reads only your own prefix ({exc}); to see the rest of the bucket, "
                "construct StreamifyFileSystem(endpoint_url=..., key=..., secret=...) with "
                "S3 credentials") from exc

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        data: bytes = self._direct("cat_file").cat_file(self._strip_protocol(path), start=start,
                                                        end=end, **kwargs)
        return data

    def rm_file(self, path: str) -> None:
        self._direct("rm_file").rm_file(self._strip_protocol(path))

    def rm(self, path: str | list[str], recursive: bool = False,
           maxdepth: int | None = None) -> None:
        self._direct("rm").rm(self._strip_protocol(path), recursive=recursive, maxdepth=maxdepth)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a bucket (direct mode). A prefix needs nothing: S3 has no folders."""
        path = self._strip_protocol(path)
        if "/" not in path:
            self._direct("mkdir").mkdir(path, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing for a prefix or with ``exist_ok``: fsspec calls this for the parent of
        every file it opens for writing, and a write never creates a bucket (a missing one
        is a clear error). ``makedirs("bucket")`` creates the bucket (direct mode)."""
        path = self._strip_protocol(path)
        if "/" not in path and not exist_ok:
            self._direct("makedirs").makedirs(path, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self._direct("rmdir").rmdir(self._strip_protocol(path))

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """A copy inside the store (S3 CopyObject, no bytes through this machine)."""
        self._direct("cp_file").cp_file(self._strip_protocol(path1),
                                        self._strip_protocol(path2), **kwargs)

    def modified(self, path: str) -> Any:
        return self._direct("modified").modified(self._strip_protocol(path))

    def invalidate_cache(self, path: str | None = None) -> None:
        if self._s3 is not None:
            self._s3.invalidate_cache(None if path is None else self._strip_protocol(path))

    def open(self, path: str, mode: str = "rb", block_size: int | None = None,
             cache_options: dict[str, Any] | None = None, compression: str | None = None,
             **kwargs: Any) -> Any:
        """As in every fsspec filesystem; text opened with ``"w"`` aborts like the binary
        file when its ``with`` block ends by an exception."""
        if "b" in mode or compression is not None or mode.replace("t", "") not in ("w", "x"):
            return super().open(path, mode, block_size=block_size, cache_options=cache_options,
                                compression=compression, **kwargs)
        text_options = {name: kwargs.pop(name) for name in ("encoding", "errors", "newline")
                        if name in kwargs}
        binary = self.open(path, mode.replace("t", "") + "b", block_size=block_size,
                           cache_options=cache_options, **kwargs)
        return _StreamedText(binary, **text_options)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              *, metadata: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """``"rb"``: s3fs's file (direct mode). ``"wb"``/``"xb"``: a :class:`StreamedFile`
        (``block_size`` and ``cache_options`` are reads' settings: parts follow
        ``part_size``)."""
        path = self._strip_protocol(path)
        if mode == "rb":
            return self._direct("open for reading").open(
                path, mode, block_size=block_size, cache_options=cache_options, **kwargs)
        if mode not in ("wb", "xb"):
            raise NotImplementedError(f"streamify: mode {mode!r} is not supported; S3 "
                                      "objects are written whole ('wb') or read ('rb')")
        if kwargs:
            raise TypeError(f"open got unknown options: {', '.join(sorted(kwargs))}")
        if self.api_url is not None:
            raise NotImplementedError(
                f"streamify: writing a stream (open 'wb', pipe_file, touch) needs direct mode: "
                f"the API service at {self.api_url} must know an object's size before its "
                "upload starts; use put_file for files, or construct StreamifyFileSystem("
                "endpoint_url=..., key=..., secret=...) with S3 credentials")
        if not autocommit:
            raise NotImplementedError("streamify: transactions (autocommit=False) are not "
                                      "supported; each file completes when it is closed")
        if mode == "xb" and self.exists(path):
            raise FileExistsError(f"streamify://{path} exists and mode is 'xb'")
        writer = StreamWriter(self._destination(path), control=self.control,
                              config=self.config, metadata=metadata, sender=self.sender)
        return StreamedFile(writer, path, self._written)


class StreamedFile(io.RawIOBase):
    """A file open for writing on ``streamify://``: a :class:`StreamWriter` as a file.

    Bytes go out in parallel parts while the program writes (at most ``concurrency`` parts
    in memory). ``close()`` completes and verifies the object: closing keeps what was
    written, as with any file, also from an ``except`` block or a ``finally``.
    ``abort()`` discards it (the multipart upload is aborted, no object appears). Used as
    the context manager, the file aborts when the ``with`` block ends by an exception, so
    a half-written object never appears; ``fsspec.open(...)``'s context manager closes the
    file without saying why, so there call ``abort()`` on errors. ``result`` is the
    completed upload.
    """

    def __init__(self, writer: StreamWriter, path: str,
                 written: Callable[[str], None]) -> None:
        super().__init__()
        self.writer = writer
        self.path = path
        self.result: UploadResult | None = None
        self._written = written
        self._position = 0

    @property
    def name(self) -> str:
        return f"streamify://{self.path}"

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"write to {self.name}, which is closed")
        written = self.writer.write(data)
        self._position += written
        return written

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        """Send the last part, complete and verify the object. Closing again does nothing."""
        self._end(self.writer.close)

    def abort(self) -> None:
        """Discard what was written: abort the multipart upload, create no object."""
        self._end(self.writer.abort)

    def _end(self, end: Callable[[], UploadResult | None]) -> None:
        if self.closed:
            return
        try:
            self.result = end()
        finally:
            super().close()
            self._written(self.path)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is None:
            self.close()
        else:
            self.abort()


class _StreamedText(io.TextIOWrapper):
    """Text on a :class:`StreamedFile` (``fs.open(path, "w")``): leaving a ``with`` block
    by an exception aborts, as the binary file does; closing completes."""

    def __init__(self, file: StreamedFile, **options: Any) -> None:
        super().__init__(file, **options)
        self._file = file

    def abort(self) -> None:
        """Discard what was written, the text not yet encoded too."""
        self._file.abort()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is None:
            self.close()
        else:
            self.abort()


class _CallbackProgress:
    """Feeds an fsspec ``Callback`` from the engine's events (sent by several workers)."""

    def __init__(self, callback: Any) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._sized = False

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started | ev.Progress):
            with self._lock:
                # An object already there has no Started: its one Progress sizes it.
                if not self._sized:
                    self._callback.set_size(event.total_bytes)
                    self._sized = True
                if isinstance(event, ev.Progress):
                    self._callback.absolute_update(event.bytes_done)


def _folder(key: str) -> str:
    """``key`` as a folder prefix: ``""`` for the bucket, else ending with ``/``."""
    return key if not key or key.endswith("/") else key + "/"


def _listed_entry(listed: ListedObject) -> dict[str, Any]:
    return {"name": f"{listed.destination.bucket}/{listed.destination.key}",
            "size": listed.size, "type": "file", "ETag": listed.etag,
            "LastModified": datetime.fromtimestamp(listed.last_modified, tz=UTC)}
