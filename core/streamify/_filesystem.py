"""``StreamifyFileSystem``: fsspec's ``streamify://`` protocol.

Writes (``put``, ``put_file``, ``pipe``, ``pipe_file``, ``open(..., "wb")``, ``touch``) go
through the resumable engine: parallel parts with Content-MD5, retries, verification, and
for files a resume when the same ``put`` is repeated after a crash. A ``put`` of many
files runs them as one :class:`UploadBatch` (one memory budget, one connection pool, one
listing of the destination prefix). Reads and listings are s3fs's (direct mode, S3
credentials); with the API service (``api_url``), which holds the credentials, only what
the service offers is available (``ServiceListing``). Files open for writing are
``StreamedFile``s.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from ._batch import BatchFile, UploadBatch
from ._config import UploadConfig
from ._control import ControlPlane
from ._destination import Destination
from ._engine import Uploader, UploadResult
from ._errors import ConfigError, DestinationError, TransferError
from ._fsfiles import StreamedFile, StreamedText
from ._fslisting import ServiceListing
from ._fsput import CallbackProgress, PutPairs, PutProgress, is_folder, put_pairs
from ._state import StateStore
from ._stream import StreamWriter
from ._throttle import Throttle
from ._transport import PartSender

if TYPE_CHECKING:
    from ._httpcontrol import HttpControlPlane

__all__ = ["StreamifyFileSystem"]

FSSPEC_OPTIONS = ("asynchronous", "loop", "use_listings_cache", "listings_expiry_time",
                  "max_paths")
"""fsspec's own keywords, which every filesystem takes (zarr passes ``asynchronous``)."""


class StreamifyFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Files in S3 under ``streamify://bucket/key``, written by Streamify's engine.

    Direct mode takes s3fs's connection options (``endpoint_url``, ``key``, ``secret``,
    ``token`` for a session token, ``client_kwargs``, ``config_kwargs``, ``profile``);
    with ``api_url`` the writes go through the Streamify API service and ``token`` is its
    API key. Every other keyword is an :class:`UploadConfig` option (``part_size="16MiB"``,
    ``concurrency=8``, ``checksum="sha256"``...), except fsspec's own (``asynchronous``,
    ``use_listings_cache``...). The files of a ``put`` share the memory of ``batch_size x
    concurrency`` parts (``batch_size`` files of many parts at once, or up to
    ``concurrency`` times as many of one part) and one connection pool. ``state_dir`` is
    where resume states live (default ``$STREAMIFY_STATE_DIR`` or the user's state
    directory).

    Constructing it does no I/O.
    """

    protocol = "streamify"
    root_marker = ""

    def __init__(self, *, endpoint_url: str | None = None, key: str | None = None,
                 secret: str | None = None, token: str | None = None,
                 client_kwargs: dict[str, Any] | None = None,
                 config_kwargs: dict[str, Any] | None = None, profile: str | None = None,
                 api_url: str | None = None, state_dir: str | None = None,
                 batch_size: int = 4, **options: Any) -> None:
        super().__init__(**{name: options.pop(name) for name in FSSPEC_OPTIONS
                            if name in options})
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
        self.config = UploadConfig.from_options(**options)
        self.state = StateStore(state_dir)
        self._lock = threading.Lock()
        self._control: ControlPlane | None = None
        self._sender: PartSender | None = None
        self._s3: Any = None
        self._service_listing = (None if api_url is None
                                 else ServiceListing(self._service, api_url))

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
        location = os.fspath(lpath)
        if isinstance(callback, PutPairs):
            callback.pairs.append((location, rpath))  # fsspec's put naming its files
            return None
        if is_folder(location):
            return None  # S3 has no directories: a prefix exists once a file is under it
        target = str(self._strip_protocol(rpath))
        if rpath.endswith("/") or "/" not in target:  # a folder: the file keeps its name
            target = f"{target}/{os.path.basename(location.rstrip('/'))}"
        rpath = target
        self._refuse_existing(mode, [rpath])
        try:
            # The uploader opens the file, and closes it; the sender is this filesystem's.
            with Uploader(location, self._destination(rpath), control=self.control,
                          config=self.config, state=self.state, sender=self.sender,
                          metadata=metadata) as uploader:
                uploader.subscribe(CallbackProgress(callback))
                result = uploader.run()
        finally:
            self._written(rpath)
        if result.status != "completed":
            raise TransferError(f"upload of {location} to {result.destination} was paused; "
                                "repeat the same put to resume it")
        return result

    def put(self, lpath: str | list[str], rpath: str | list[str], recursive: bool = False,
            callback: Any = DEFAULT_CALLBACK, maxdepth: int | None = None,
            batch_size: int | None = None, **kwargs: Any) -> None:
        """Upload files and directory trees (``recursive=True``) as one batch in the memory
        of ``batch_size x concurrency`` parts. Repeating the same ``put`` after a crash
        sends only what is missing: finished files are recognised, open uploads resumed.

        Paths expand as in every fsspec filesystem; sources may also be fsspec URLs.
        """
        mode = kwargs.pop("mode", "overwrite")
        metadata = kwargs.pop("metadata", None)
        if kwargs:
            raise TypeError(f"put got unknown options: {', '.join(sorted(kwargs))}")
        pairs = put_pairs(self, lpath, rpath, recursive=recursive, maxdepth=maxdepth)
        self._refuse_existing(mode, [target for _, target in pairs])
        callback.set_size(len(pairs))
        files = {BatchFile(source, self._destination(target), self.control, self.config,
                           metadata): target for source, target in pairs}
        progress = PutProgress(callback, files, self._written)
        outcome = UploadBatch(state=self.state, config=self.config,
                              jobs=batch_size or self.batch_size, on_start=progress.start,
                              on_end=progress.end).run(list(files))
        outcome.raise_failures("repeat the same put")
        if outcome.stopped:
            raise TransferError("the put was paused; repeat the same put to resume it")

    def _refuse_existing(self, mode: str, rpaths: list[str]) -> None:
        if mode == "create":
            for rpath in rpaths:
                if self.exists(rpath):
                    raise FileExistsError(f"streamify://{rpath} exists and mode='create'")

    # ------------------------------------------------------------------ reads and listings
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if self._service_listing is not None:
            return self._service_listing.ls(path, detail)
        return list(self._direct("ls").ls(path, detail=detail, **kwargs))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if self._service_listing is not None:
            return self._service_listing.info(path)
        return dict(self._direct("info").info(path, **kwargs))

    def exists(self, path: str, **kwargs: Any) -> bool:
        path = self._strip_protocol(path)
        if self._service_listing is not None:
            return self._service_listing.exists(path)
        return bool(self._direct("exists").exists(path, **kwargs))

    def isdir(self, path: str) -> bool:
        path = self._strip_protocol(path)
        if self._service_listing is not None:
            return self._service_listing.isdir(path)
        return bool(self._direct("isdir").isdir(path))

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if self._service_listing is not None:
            return self._service_listing.find(path, maxdepth, withdirs, detail)
        return self._direct("find").find(path, maxdepth=maxdepth, withdirs=withdirs,
                                         detail=detail, **kwargs)

    def _service(self) -> HttpControlPlane:
        from ._httpcontrol import HttpControlPlane

        control = self.control
        assert isinstance(control, HttpControlPlane), "API mode has an HttpControlPlane"
        return control

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
        return StreamedText(binary, **text_options)

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
