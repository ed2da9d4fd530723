"""The one-liners: ``streamify.upload(source, "s3://bucket/key")`` and ``upload_stream``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import IO, Any, cast

from ._config import UploadConfig
from ._control import ControlPlane
from ._destination import Destination
from ._engine import Uploader
from ._events import Subscriber
from ._result import UploadResult
from ._s3control import S3ControlPlane
from ._source import Source
from ._state import StateStore
from ._stream import StreamWriter, write_stream

__all__ = ["upload", "upload_stream"]


def upload(source: str | os.PathLike[str] | Source | IO[bytes], destination: str | Destination,
           *, endpoint_url: str | None = None, control: ControlPlane | None = None,
           state_dir: str | None = None, on_event: Subscriber | None = None,
           metadata: dict[str, str] | None = None, **options: Any) -> UploadResult:
    """Upload ``source`` (a path, an fsspec URL, or a binary file object) to
    ``s3://bucket/key``, resuming if an earlier attempt was interrupted, and return what
    happened. A file object is read as a stream (see :func:`upload_stream`).

    ``options`` are :class:`UploadConfig` fields (``part_size="16MiB"``, ``concurrency=8``,
    ``checksum="sha256"``...). Credentials come from the standard AWS chain. A destination
    that already holds exactly this file is left alone (``result.skipped``) unless
    ``if_exists="overwrite"``.
    """
    if not isinstance(source, str | os.PathLike) and not hasattr(source, "fingerprint"):
        return upload_stream(source, destination, endpoint_url=endpoint_url,
                             control=control, on_event=on_event, metadata=metadata, **options)
    config = UploadConfig.from_options(**options)
    plane = control or _s3(endpoint_url, config)
    try:
        with Uploader(cast(Source, source), destination, control=plane, config=config,
                      state=StateStore(state_dir), metadata=metadata) as uploader:
            if on_event is not None:
                uploader.subscribe(on_event)
            return uploader.run()
    finally:
        if control is None:
            plane.close()


def upload_stream(readable: IO[bytes] | Iterable[bytes], destination: str | Destination, *,
                  control: ControlPlane | None = None, endpoint_url: str | None = None,
                  on_event: Subscriber | None = None, metadata: dict[str, str] | None = None,
                  **options: Any) -> UploadResult:
    """Upload a stream of unknown size (a pipe, stdin, a generator of bytes) to
    ``s3://bucket/key``, in parallel, with memory bounded by ``concurrency x part_size``.

    Part sizes grow as the stream grows, so it may reach 5 TiB. A stream is retried within
    the process but cannot resume after a crash (its bytes cannot be read again): a failure
    aborts the multipart upload. ``options`` are :class:`UploadConfig` fields.
    """
    config = UploadConfig.from_options(**options)
    plane = control or _s3(endpoint_url, config)
    try:
        writer = StreamWriter(destination, control=plane, config=config, metadata=metadata)
        if on_event is not None:
            writer.subscribe(on_event)
        return write_stream(writer, readable)
    finally:
        if control is None:
            plane.close()


def _s3(endpoint_url: str | None, config: UploadConfig) -> S3ControlPlane:
    return S3ControlPlane(endpoint_url=endpoint_url,
                          max_pool_connections=max(10, config.concurrency * 2))
