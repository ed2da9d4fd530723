"""What the engine tests share: small uploads on moto, each closed after its test."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import streamify
from streamify import Progress, S3ControlPlane, StateStore, UploadConfig, Uploader

from tests.conftest import Bucket

MiB = 1024 * 1024
CONFIG = UploadConfig(part_size=5 * MiB, concurrency=3)

UPLOADERS = contextlib.ExitStack()
"""Every uploader a test makes; ``tests/functional/conftest.py`` closes them after it."""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_uploader(path: Path, bucket: Bucket, key: str, state_dir: str,
                 config: UploadConfig = CONFIG, **kwargs: object) -> Uploader:
    return UPLOADERS.enter_context(Uploader(
        path, bucket.url(key), control=S3ControlPlane(endpoint_url=bucket.endpoint),
        config=config, state=StateStore(state_dir), **kwargs))  # type: ignore[arg-type]


def pause_at(uploader: Uploader, fraction: float) -> None:
    def on_event(event: streamify.Event) -> None:
        if isinstance(event, Progress) and event.bytes_done >= event.total_bytes * fraction:
            uploader.pause()

    uploader.subscribe(on_event)
