"""``UploadConfig``: every upload option and every default, in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ._errors import ConfigError
from ._units import parse_size

__all__ = ["MAX_PART_SIZE", "MIN_PART_SIZE", "ChecksumName", "OnUploadGone", "UploadConfig"]

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB

ChecksumName = Literal["none", "crc32", "sha1", "sha256"]
OnUploadGone = Literal["restart", "fail"]
_CHECKSUMS = ("none", "crc32", "sha1", "sha256")


@dataclass(frozen=True, kw_only=True)
class UploadConfig:
    """How an upload runs. Frozen and validated; build a variant with ``replace(...)``.

    ``part_size`` is the preferred size; it grows for files that would otherwise need more
    than 10,000 parts. Peak memory is about ``concurrency * part_size``.
    """

    part_size: int = 8 * MiB
    concurrency: int = 4
    checksum: ChecksumName = "none"
    bwlimit: int | None = None
    """Bytes per second across all workers; ``None`` for no limit."""
    max_attempts: int = 8
    """Attempts per part before the upload fails (the state is kept; rerun to resume)."""
    deadline: float | None = None
    """Seconds the whole upload may take before it stops (resumable); ``None`` for no limit."""
    backoff_base: float = 0.25
    backoff_max: float = 20.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    url_expiry: int = 900
    """Seconds a presigned part URL stays valid."""
    on_upload_gone: OnUploadGone = "restart"
    """What to do when the open upload was aborted behind our back: start afresh or fail."""
    content_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE or self.part_size > MAX_PART_SIZE:
            raise ConfigError(
                f"part size {self.part_size} bytes is outside S3's limits: "
                "use 5MiB to 5GiB, for example --part-size 8MiB"
            )
        if not 1 <= self.concurrency <= 64:
            raise ConfigError(f"concurrency {self.concurrency} must be between 1 and 64")
        if self.checksum not in _CHECKSUMS:
            raise ConfigError(
                f"unknown checksum {self.checksum!r}: choose one of {', '.join(_CHECKSUMS)}"
            )
        if self.bwlimit is not None and self.bwlimit < 64 * 1024:
            raise ConfigError(f"bandwidth limit {self.bwlimit} B/s is below the 64KiB/s minimum")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if self.on_upload_gone not in ("restart", "fail"):
            raise ConfigError("on_upload_gone must be 'restart' or 'fail'")
        if not 1 <= self.url_expiry <= 7 * 86400:
            raise ConfigError("url_expiry must be between 1 second and 7 days")

    @classmethod
    def from_options(cls, **options: object) -> UploadConfig:
        """Build a config from loosely typed options (sizes may be strings like ``"8MiB"``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown upload option(s): {', '.join(unknown)}")
        values = {k: v for k, v in options.items() if v is not None}
        for name in ("part_size", "bwlimit"):
            if name in values:
                values[name] = parse_size(values[name])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> UploadConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
