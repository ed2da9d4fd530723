"""``UploadConfig``: every upload option and every default, in one place."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._errors import ConfigError
from ._retry import RetryBudget
from ._units import parse_size

__all__ = ["MAX_PART_SIZE", "MIN_PART_SIZE", "ChecksumName", "IfExists", "OnUploadGone",
           "UploadConfig"]

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB

ChecksumName = Literal["none", "crc32", "sha1", "sha256", "crc64nvme"]
OnUploadGone = Literal["restart", "fail"]
IfExists = Literal["skip_identical", "refuse_different", "overwrite"]
_CHECKSUMS = ("none", "crc32", "sha1", "sha256", "crc64nvme")


@dataclass(frozen=True, kw_only=True)
class UploadConfig:
    """How an upload runs. Frozen and validated; build a variant with ``replace(...)``.

    ``part_size`` is the preferred size; it grows for files that would otherwise need more
    than 10,000 parts. Peak memory is about ``concurrency * part_size``. Sizes
    (``part_size``, ``bwlimit``) are bytes or strings such as ``"16MiB"``.
    """

    part_size: int = 8 * MiB
    concurrency: int = 4
    checksum: ChecksumName = "none"
    """An S3 additional checksum per part, beside Content-MD5. With ``"crc64nvme"`` (the
    ``crc`` extra) the object also gets a full-object CRC64NVME, checked after complete.
    Not every store verifies these (Ceph radosgw ignores them)."""
    content_md5: bool = True
    """Send every part with Content-MD5, which every S3 store verifies. ``False`` leaves the
    per-part check to ``checksum`` (which must then be set), saving the MD5's CPU: only for
    stores that verify additional checksums, such as AWS S3."""
    bwlimit: int | None = None
    """Bytes per second across all workers; ``None`` for no limit."""
    max_attempts: int = 20
    """Attempts of one call (a part PUT, or a sign, list, complete... call to S3 or the API
    service) before the upload stops (the state is kept; rerun to resume)."""
    retry_for: float = 300.0
    """Seconds one call keeps retrying transient failures (network down, storage or API
    service unavailable, throttled), from its first failure: the outage an upload rides
    out by itself. Whichever of this and ``max_attempts`` runs out first ends the retries."""
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
    if_exists: IfExists = "skip_identical"
    """When no upload to the destination is open but an object is there: leave it if it is
    exactly this source (size and multipart ETag) and overwrite it otherwise
    ("skip_identical"), leave an identical one and refuse any other ("refuse_different"),
    or upload regardless ("overwrite")."""

    if TYPE_CHECKING:
        # Sizes may be given as strings ("16MiB"); they are stored as bytes.
        def __init__(self, *, part_size: int | str = ..., concurrency: int = ...,
                     checksum: ChecksumName = ..., content_md5: bool = ...,
                     bwlimit: int | str | None = ...,
                     max_attempts: int = ..., retry_for: float = ...,
                     deadline: float | None = ...,
                     backoff_base: float = ..., backoff_max: float = ...,
                     connect_timeout: float = ..., read_timeout: float = ...,
                     url_expiry: int = ..., on_upload_gone: OnUploadGone = ...,
                     content_type: str = ..., if_exists: IfExists = ...) -> None: ...

    def __post_init__(self) -> None:
        for name in ("part_size", "bwlimit"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, parse_size(value))
                except ConfigError as exc:
                    raise ConfigError(f"{name}: {exc}", parameter=name) from None
        if self.part_size < MIN_PART_SIZE or self.part_size > MAX_PART_SIZE:
            raise ConfigError(
                f"part_size {self.part_size} bytes is outside S3's limits: use 5MiB to 5GiB, "
                'for example part_size="8MiB"', parameter="part_size")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError(f"concurrency {self.concurrency} must be between 1 and 64",
                              parameter="concurrency")
        if self.checksum not in _CHECKSUMS:
            raise ConfigError(
                f"unknown checksum {self.checksum!r}: choose one of {', '.join(_CHECKSUMS)}",
                parameter="checksum")
        if self.checksum == "crc64nvme" and importlib.util.find_spec("awscrt") is None:
            # Said before an upload starts, not at its first part.
            raise ConfigError("checksum 'crc64nvme' needs the awscrt package: pip install "
                              "'streamify[crc]'", parameter="checksum")
        if not self.content_md5 and self.checksum == "none":
            raise ConfigError(
                "content_md5=False needs a checksum to check each part by instead: use "
                'checksum="crc64nvme" (on stores that verify it, such as AWS S3)',
                parameter="content_md5")
        if self.bwlimit is not None and self.bwlimit < 64 * 1024:
            raise ConfigError(f"bwlimit {self.bwlimit} B/s is below the 64KiB/s minimum",
                              parameter="bwlimit")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1", parameter="max_attempts")
        if self.retry_for < 0:
            raise ConfigError("retry_for must be 0 or more seconds", parameter="retry_for")
        if self.on_upload_gone not in ("restart", "fail"):
            raise ConfigError("on_upload_gone must be 'restart' or 'fail'",
                              parameter="on_upload_gone")
        if self.if_exists not in ("skip_identical", "refuse_different", "overwrite"):
            raise ConfigError("if_exists must be 'skip_identical', 'refuse_different' or "
                              "'overwrite'", parameter="if_exists")
        if not 1 <= self.url_expiry <= 7 * 86400:
            raise ConfigError("url_expiry must be between 1 second and 7 days",
                              parameter="url_expiry")

    def retry_budget(self) -> RetryBudget:
        """A fresh budget for one call's retries."""
        return RetryBudget(max_attempts=self.max_attempts, retry_for=self.retry_for,
                           base=self.backoff_base, cap=self.backoff_max)

    @classmethod
    def from_options(cls, **options: object) -> UploadConfig:
        """Build a config from loosely typed options (sizes may be strings like ``"8MiB"``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown upload option(s): {', '.join(unknown)}")
        values = {k: v for k, v in options.items() if v is not None}
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> UploadConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
