"""Housekeeping: abandoned multipart uploads cost money; bucket rules browsers need."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import botocore.exceptions

from ._control import ControlPlane, OpenUpload
from ._destination import Destination
from ._s3control import translate_s3_error
from ._state import StateStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["apply_bucket_rules", "collect_stale_uploads", "stale_uploads"]

LIFECYCLE_RULE_ID = "streamify-abort-incomplete-multipart"


def stale_uploads(uploads: Sequence[OpenUpload], *, older_than: float, now: float,
                  ours: set[str] | None) -> list[OpenUpload]:
    """Uploads started more than ``older_than`` seconds before ``now``.

    ``ours`` limits them to the upload ids Streamify recorded; ``None`` means any upload.
    """
    return [u for u in uploads if now - u.initiated > older_than
            and (ours is None or u.upload_id in ours)]


def collect_stale_uploads(control: ControlPlane, where: Destination, state: StateStore, *,
                          older_than: float, include_foreign: bool = False,
                          dry_run: bool = False) -> list[OpenUpload]:
    """Abort the stale uploads under ``where`` (a bucket and key prefix); return them.

    By default only uploads this tool started (recorded in ``state``) are touched.
    """
    recorded = {s.upload_id for s in state.all() if s.destination.bucket == where.bucket}
    stale = stale_uploads(control.list_uploads(where), older_than=older_than, now=time.time(),
                          ours=None if include_foreign else recorded)
    if not dry_run:
        for upload in stale:
            control.abort(upload.destination, upload.upload_id)
            state.remove(control.endpoint, upload.destination)
    return stale


def apply_bucket_rules(client: S3Client, bucket: str, *, abort_after_days: int = 7,
                       allowed_origins: Sequence[str] = ("*",)) -> None:
    """Set the lifecycle rule that aborts incomplete uploads and the CORS rule browsers need.

    The lifecycle rule replaces any rule with Streamify's id and keeps the others.
    """
    where = Destination(bucket, "")
    try:
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        rules.append({
            "ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_after_days},
        })
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": list(allowed_origins),
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }]})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise translate_s3_error(exc, "setting up bucket", where) from exc
