"""Housekeeping: abandoned multipart uploads cost money; bucket rules browsers need."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from ._control import ControlPlane, OpenUpload
from ._destination import Destination
from ._errors import UploadGoneError
from ._s3control import translate_s3_error
from ._state import StateStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["apply_bucket_rules", "collect_stale_uploads", "stale_uploads"]

LIFECYCLE_RULE_ID = "streamify-abort-incomplete-multipart"
CORS_RULE_ID = "streamify-browser-uploads"


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

    By default only uploads this tool started (recorded in ``state``) are touched. An
    upload is stale when it started longer than ``older_than`` ago and no part of it was
    written since: S3's start date alone is not trusted (some servers, moto among them,
    report a fixed date for every upload), so an upload still in progress is never aborted.
    """
    recorded = {s.upload_id: s for s in state.all() if s.destination.bucket == where.bucket}
    now = time.time()
    candidates = stale_uploads(control.list_uploads(where), older_than=older_than, now=now,
                               ours=None if include_foreign else set(recorded))
    stale = []
    for upload in candidates:
        mine = recorded.get(upload.upload_id)
        # Our own record of the start is this machine's clock, not the server's claim.
        if mine is not None and now - mine.created_at <= older_than:
            continue
        if now - _last_written(control, upload, since=upload.initiated) <= older_than:
            continue
        stale.append(upload)
    if not dry_run:
        for upload in stale:
            control.abort(upload.destination, upload.upload_id)
            # One state per destination: it may belong to a newer upload to the same key.
            current = state.load(control.endpoint, upload.destination)
            if current is not None and current.upload_id == upload.upload_id:
                state.remove(control.endpoint, upload.destination)
    return stale


def _last_written(control: ControlPlane, upload: OpenUpload, *, since: float) -> float:
    """When the upload's newest part was written; ``since`` if it has no part. A part
    whose time the control plane does not report counts as written just now."""
    try:
        parts = control.list_parts(upload.destination, upload.upload_id)
    except UploadGoneError:
        return since  # finished or aborted meanwhile: aborting it again is harmless
    times = [p.last_modified for p in parts]
    if any(t is None for t in times):
        return time.time()
    return max([since, *(t for t in times if t is not None)])


def apply_bucket_rules(client: S3Client, bucket: str, *, allowed_origins: Sequence[str] = (),
                       abort_after_days: int = 7) -> None:
    """Set the lifecycle rule that aborts incomplete uploads and, for ``allowed_origins``
    (the web pages allowed to PUT parts from a browser; ``["*"]`` only on purpose), the
    CORS rule browsers need. With no origins no CORS rule is set: programs need none. Both
    rules replace any earlier rule with Streamify's id and keep the bucket's other rules.
    """
    where = Destination(bucket, "")
    try:
        rules = _existing(client.get_bucket_lifecycle_configuration, bucket,
                          "NoSuchLifecycleConfiguration", "Rules")
        rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        rules.append({
            "ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_after_days},
        })
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        if not allowed_origins:
            return
        cors = _existing(client.get_bucket_cors, bucket, "NoSuchCORSConfiguration", "CORSRules")
        cors = [r for r in cors if r.get("ID") != CORS_RULE_ID]
        cors.append({
            "ID": CORS_RULE_ID,
            "AllowedOrigins": list(allowed_origins),
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        })
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": cors})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise translate_s3_error(exc, "setting up bucket", where) from exc


def _existing(get: Callable[..., Any], bucket: str, missing_code: str,
              field: str) -> list[Any]:
    """The bucket's current rules of one kind; none when the bucket has none yet."""
    try:
        rules: list[Any] = get(Bucket=bucket).get(field, [])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != missing_code:
            raise
        return []
    return rules
