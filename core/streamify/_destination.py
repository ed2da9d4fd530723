"""``Destination``: where an object goes, parsed from ``s3://bucket/key``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import DestinationError

__all__ = ["Destination"]

# What any S3 store accepts (older, looser names included: upper case, underscores, up to
# 255 characters); anything else would fail later with a less clear message.
_BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{3,255}")
# What a bucket created today must look like.
_NEW_BUCKET_NAME = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_RULE = "S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens"


@dataclass(frozen=True, slots=True)
class Destination:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> Destination:
        """Parse ``s3://bucket/key``. A trailing ``/`` means a prefix (``key`` ends with ``/``)."""
        if not url.startswith("s3://"):
            raise DestinationError(f"destination {url!r} must look like s3://bucket/key")
        bucket, _, key = url[len("s3://") :].partition("/")
        if not bucket:
            raise DestinationError(f"destination {url!r} names no bucket: use s3://bucket/key")
        if not _BUCKET_NAME.fullmatch(bucket):
            raise DestinationError(
                f"destination {url!r}: {bucket!r} is not a valid bucket name: {_RULE}")
        return cls(bucket=bucket, key=key)

    def missing_bucket(self) -> str:
        """What to say when storage answers that the bucket does not exist."""
        hint = ("create it (streamify setup-bucket --create) or check the name and "
                "--endpoint-url")
        if not _NEW_BUCKET_NAME.fullmatch(self.bucket):
            hint = f"{self.bucket!r} is not even a valid name for a new bucket ({_RULE})"
        return f"bucket {self.bucket!r} does not exist; {hint}"

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def child(self, name: str) -> Destination:
        """The destination of ``name`` inside this prefix."""
        return Destination(self.bucket, self.key + name)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return self.url
