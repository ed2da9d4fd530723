"""The commands around uploads: ``status``, ``abort``, ``gc`` and ``setup-bucket``."""

from __future__ import annotations

import datetime
import time

import click

from .._destination import Destination
from .._errors import ConfigError, StreamifyError
from .._housekeeping import apply_bucket_rules, collect_stale_uploads
from .._s3control import S3ControlPlane, translate_s3_error
from .._state import ResumeState, StateStore
from .._units import format_size, parse_duration
from .options import (
    ControlPlanes,
    connection_options,
    others_option,
    refuse_token_without_api,
    trust_state_option,
)

__all__ = ["abort", "gc", "setup_bucket", "status"]


def _age(seconds_since_epoch: float) -> str:
    age = time.time() - seconds_since_epoch
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.1f}{unit}"
    return f"{age:.0f}s"


@click.command()
@click.argument("where", required=False)
@connection_options
@trust_state_option
@others_option
def status(where: str | None, endpoint_url: str | None, api: str | None, token: str | None,
           state_dir: str | None, trust_state_endpoint: bool, include_others: bool) -> None:
    """Show your unfinished uploads in the state store (how much of each S3 holds), and
    the open uploads under WHERE (s3://bucket/prefix) when given. Only the S3 endpoint or
    API service this command is pointed at is asked (--endpoint-url, or --api with its
    token)."""
    refuse_token_without_api(api)
    state = StateStore(state_dir)
    planes = ControlPlanes(endpoint_url=endpoint_url, api=api, token=token,
                           trust_state_endpoint=trust_state_endpoint)
    try:
        found = state.all()
        local = found if include_others else [s for s in found if planes.started(s)]
        target = Destination.parse(where) if where is not None else None
        if target is not None:
            planes.require_place_for(target.bucket, local)
        others = (f" (and {len(found) - len(local)} started by others: --all lists them)"
                  if len(found) > len(local) else "")
        click.echo(f"unfinished uploads in {state.location}: {len(local)}{others}")
        for item in local:
            click.echo(f"  {item.destination}  from {item.source}  upload {item.upload_id}  "
                       f"started {_age(item.created_at)} ago{_via(item)}  "
                       f"{_held(planes, item, state)}")
        if target is None:
            return
        known = {s.upload_id for s in local}
        uploads = planes.default().list_uploads(target)
        click.echo(f"open multipart uploads under {target}: {len(uploads)}")
        for upload_ in uploads:
            mark = " (in the state store)" if upload_.upload_id in known else ""
            click.echo(f"  {upload_.destination}  upload {upload_.upload_id}  "
                       f"started {_age(upload_.initiated)} ago{mark}")
    finally:
        planes.close()


def _via(item: ResumeState) -> str:
    return f"  via {item.api_url}" if item.api_url else ""


def _held(planes: ControlPlanes, item: ResumeState, state: StateStore) -> str:
    """How much of ``item``'s upload S3 holds, asked only where credentials may go."""
    try:
        control = planes.for_state(item, state)
    except ConfigError as exc:
        return f"not asked: {exc}"
    try:
        parts = control.list_parts(item.destination, item.upload_id)
    except StreamifyError as exc:
        return f"cannot ask S3: {exc}"
    return (f"{format_size(sum(p.size for p in parts))} of "
            f"{format_size(item.fingerprint.size)} in S3")


@click.command()
@click.argument("dest")
@connection_options
@click.option("--upload-id", help="Abort only this upload id (default: every open upload "
              "to DEST).")
def abort(dest: str, endpoint_url: str | None, api: str | None, token: str | None,
          state_dir: str | None, upload_id: str | None) -> None:
    """Abort the open upload(s) to DEST and forget their resume state."""
    refuse_token_without_api(api)
    target = Destination.parse(dest)
    state = StateStore(state_dir)
    planes = ControlPlanes(endpoint_url=endpoint_url, api=api, token=token)
    try:
        planes.require_place_for(target.bucket, [s for s in state.all() if planes.started(s)])
        control = planes.default()
        recorded = state.load(control.endpoint, target)
        ids = {u.upload_id for u in control.list_uploads(target)
               if u.destination.key == target.key}
        if recorded is not None:
            ids.add(recorded.upload_id)
        if upload_id is not None:
            ids &= {upload_id}
        for item in sorted(ids):
            try:
                control.abort(target, item)
                click.echo(f"aborted upload {item} to {target}")
            except StreamifyError as exc:
                click.echo(f"upload {item} to {target}: {exc}", err=True)
        state.remove(control.endpoint, target)
    finally:
        planes.close()
    if not ids:
        click.echo(f"no open upload to {target}", err=True)


@click.command()
@click.argument("where")
@connection_options
@click.option("--older-than", default="7d", show_default=True,
              help="Abort uploads started, and last written to, longer ago than this "
                   "(7d, 12h, 90m).")
@click.option("--all", "include_foreign", is_flag=True,
              help="Also abort uploads Streamify did not start.")
@click.option("--dry-run", is_flag=True, help="Only list what would be aborted.")
def gc(where: str, endpoint_url: str | None, api: str | None, token: str | None,
       state_dir: str | None, older_than: str, include_foreign: bool, dry_run: bool) -> None:
    """Abort stale multipart uploads under WHERE (s3://bucket/prefix). An upload that
    received a part within --older-than is in progress and is left alone."""
    refuse_token_without_api(api)
    target = Destination.parse(where)
    state = StateStore(state_dir)
    planes = ControlPlanes(endpoint_url=endpoint_url, api=api, token=token)
    try:
        planes.require_place_for(target.bucket, [s for s in state.all() if planes.started(s)])
        stale = collect_stale_uploads(planes.default(), target, state,
                                      older_than=parse_duration(older_than),
                                      include_foreign=include_foreign, dry_run=dry_run)
    finally:
        planes.close()
    verb = "would abort" if dry_run else "aborted"
    for upload_ in stale:
        started = datetime.datetime.fromtimestamp(upload_.initiated, datetime.UTC)
        click.echo(f"{verb} {upload_.destination} upload {upload_.upload_id} "
                   f"(started {started:%Y-%m-%d %H:%M} UTC)")
    click.echo(f"{verb} {len(stale)} stale upload(s)", err=True)


@click.command("setup-bucket")
@click.argument("bucket_url")
@click.option("--endpoint-url", envvar="STREAMIFY_ENDPOINT_URL",
              help="S3 endpoint (default: AWS, or AWS_ENDPOINT_URL).")
@click.option("--abort-after", default="7d", show_default=True,
              help="Lifecycle: abort incomplete uploads after this many days.")
@click.option("--cors-origin", "origins", multiple=True,
              help="Web origin allowed to PUT parts from a browser, such as "
                   "https://app.example.com (repeat for several; '*' allows any page). "
                   "Without it no CORS rule is added.")
@click.option("--create", is_flag=True, help="Create the bucket if it does not exist.")
def setup_bucket(bucket_url: str, endpoint_url: str | None, abort_after: str,
                 origins: tuple[str, ...], create: bool) -> None:
    """Add the AbortIncompleteMultipartUpload lifecycle rule, and with --cors-origin the
    CORS rule browsers need; the bucket's other rules are kept. With --create, make the
    bucket first."""
    target = Destination.parse(bucket_url)
    days = max(1, round(parse_duration(abort_after) / 86400))
    plane = S3ControlPlane(endpoint_url=endpoint_url)
    try:
        if create:
            _create_bucket(plane, target.bucket)
        apply_bucket_rules(plane.client, target.bucket, abort_after_days=days,
                           allowed_origins=origins)
    finally:
        plane.close()
    cors = (f"CORS allows {', '.join(origins)} with ETag exposed" if origins else
            "no CORS rule (browsers cannot upload to it: add --cors-origin ORIGIN for that)")
    click.echo(f"s3://{target.bucket}: incomplete uploads abort after {days} day(s); {cors}")


def _create_bucket(plane: S3ControlPlane, bucket: str) -> None:
    import botocore.exceptions

    try:
        plane.client.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in (
                "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return
        raise translate_s3_error(exc, "creating bucket", Destination(bucket, "")) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate_s3_error(exc, "creating bucket", Destination(bucket, "")) from exc
