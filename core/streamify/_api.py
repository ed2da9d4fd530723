"""The one-liner: ``streamify.upload(source, "s3://bucket/key")``."""

from __future__ import annotations

import os
from typing import Any

from ._config import UploadConfig
from ._control import ControlPlane
from ._destination import Destination
from ._engine import Uploader, UploadResult
from ._events import Subscriber
from ._s3control import S3ControlPlane
from ._source import Source
from ._state import StateStore

__all__ = ["upload"]


def upload(source: str | os.PathLike[str] | Source, destination: str | Destination, *,
           endpoint_url: str | None = None, control: ControlPlane | None = None,
           state_dir: str | None = None, on_event: Subscriber | None = None,
           metadata: dict[str, str] | None = None, **options: Any) -> UploadResult:
    """Upload ``source`` (a path or fsspec URL) to ``s3://bucket/key``, resuming if an
    earlier attempt was interrupted, and return what happened.

    ``options`` are :class:`UploadConfig` fields (``part_size="16MiB"``, ``concurrency=8``,
    ``checksum="sha256"``...). Credentials come from the standard AWS chain.
    """
    config = UploadConfig.from_options(**options)
    plane = control or S3ControlPlane(endpoint_url=endpoint_url,
                                      max_pool_connections=max(10, config.concurrency * 2))
    uploader = Uploader(source, destination, control=plane, config=config,
                        state=StateStore(state_dir), metadata=metadata)
    if on_event is not None:
        uploader.subscribe(on_event)
    try:
        return uploader.run()
    finally:
        uploader.close()
