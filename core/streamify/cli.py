"""The ``streamify`` command line.

Every error is one clear line on stderr and a non-zero exit code (the error's own
``exit_code``); set ``STREAMIFY_DEBUG=1`` to see the traceback as well.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click
from tqdm import tqdm

from . import _events as ev
from ._config import UploadConfig
from ._control import ControlPlane
from ._destination import Destination
from ._engine import Uploader, UploadResult
from ._errors import ConfigError, SourceError, StreamifyError
from ._housekeeping import apply_bucket_rules, collect_stale_uploads
from ._s3control import S3ControlPlane
from ._state import ResumeState, StateStore
from ._units import format_size, parse_duration, parse_size

__all__ = ["main"]


class _Size(click.ParamType):  # type: ignore[type-arg]
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_size(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


SIZE = _Size()


def _control(endpoint_url: str | None, api: str | None, token: str | None,
             concurrency: int = 4) -> ControlPlane:
    if api:
        from ._httpcontrol import HttpControlPlane

        if not token:
            raise ConfigError("--api needs a token: pass --token or set STREAMIFY_TOKEN")
        return HttpControlPlane(api, token=token)
    return S3ControlPlane(endpoint_url=endpoint_url,
                          max_pool_connections=max(10, concurrency * 2))


def _connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--endpoint-url", envvar="STREAMIFY_ENDPOINT_URL",
                     help="S3 endpoint (default: AWS, or AWS_ENDPOINT_URL)."),
        click.option("--api", envvar="STREAMIFY_API_URL",
                     help="Use a Streamify API service instead of S3 credentials."),
        click.option("--token", envvar="STREAMIFY_TOKEN", help="API key for --api."),
        click.option("--state-dir", envvar="STREAMIFY_STATE_DIR",
                     help="Where resume states live (a directory or fsspec URL)."),
    ]):
        func = option(func)
    return func


class _ProgressBar:
    """A tqdm bar fed by engine events; it starts from the bytes already in S3, so its
    rate and ETA count only what this run sends."""

    def __init__(self, label: str, enabled: bool) -> None:
        self._label = label
        self._enabled = enabled
        self._bar: tqdm[Any] | None = None
        self._lock = threading.Lock()  # events arrive from every worker thread

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            self._show(event)

    def _show(self, event: ev.Event) -> None:
        if isinstance(event, ev.Resumed):
            click.echo(f"resuming upload {event.upload_id}: {format_size(event.bytes_present)} "
                       f"({event.parts_present} parts) already in S3, verified", err=True)
        elif isinstance(event, ev.Restarted):
            click.echo(f"upload {event.old_upload_id} was gone ({event.reason}); started afresh",
                       err=True)
        elif isinstance(event, ev.Progress) and self._enabled:
            if self._bar is None:
                self._bar = tqdm(total=event.total_bytes, initial=event.bytes_done, unit="B",
                                 unit_scale=True, unit_divisor=1024, desc=self._label,
                                 file=sys.stderr, dynamic_ncols=True, leave=True)
            self._bar.update(event.bytes_done - self._bar.n)
        elif isinstance(event, ev.Retrying) and self._bar is not None:
            self._bar.set_postfix_str(f"retry part {event.number}: {event.reason[:60]}")
        elif isinstance(event, ev.Completed | ev.Failed | ev.Paused) and self._bar is not None:
            self._bar.close()


def _expand(sources: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Yield (source, name under a destination prefix) for files, directories and globs."""
    for src in sources:
        if "://" in src and not src.startswith("file://"):
            import fsspec

            fs, path = fsspec.core.url_to_fs(src)
            protocol = src.split("://", 1)[0]
            matches = fs.glob(path) if glob.has_magic(path) else [path]
            if not matches:
                raise SourceError(f"{src}: matches no file")
            for match in matches:
                if fs.isdir(match):
                    base = os.path.dirname(match.rstrip("/"))
                    for found in sorted(fs.find(match)):
                        yield f"{protocol}://{found}", os.path.relpath(found, base)
                else:
                    yield f"{protocol}://{match}", os.path.basename(match)
            continue
        local = src.removeprefix("file://")
        matches = sorted(glob.glob(local)) if glob.has_magic(local) else [local]
        if not matches:
            raise SourceError(f"{src}: matches no file")
        for match in matches:
            if os.path.isdir(match):
                base = os.path.dirname(os.path.abspath(match))
                for root, _, files in sorted(os.walk(match)):
                    for name in sorted(files):
                        path = os.path.join(root, name)
                        yield path, os.path.relpath(os.path.abspath(path), base)
            else:
                yield match, os.path.basename(match)


def _print_result(result: UploadResult, source: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({
            "source": source, "destination": result.destination.url, "status": result.status,
            "upload_id": result.upload_id, "size": result.size, "etag": result.etag,
            "parts": result.parts, "bytes_sent": result.bytes_sent,
            "bytes_resumed": result.bytes_resumed, "resumed": result.resumed,
            "restarted": result.restarted, "seconds": round(result.seconds, 3),
        }))
        return
    rate = result.bytes_sent / result.seconds if result.seconds > 0 else 0.0
    resumed = (f", {format_size(result.bytes_resumed)} were already there"
               if result.resumed else "")
    click.echo(f"{result.status}: {source} -> {result.destination} "
               f"({format_size(result.size)}, {result.parts} parts; sent "
               f"{format_size(result.bytes_sent)} at {format_size(rate)}/s{resumed})")


def _upload_one(source: str, destination: Destination, control: ControlPlane,
                config: UploadConfig, state: StateStore, *, progress: bool,
                as_json: bool) -> UploadResult:
    uploader = Uploader(source, destination, control=control, config=config, state=state)
    uploader.subscribe(_ProgressBar(os.path.basename(source.rstrip("/")) or source,
                                    progress))
    try:
        result = uploader.run()
    finally:
        uploader.close()
    _print_result(result, source, as_json)
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamify")
def cli() -> None:
    """Resumable, parallel, verified uploads of large files to S3.

    Rerunning an interrupted `streamify upload` resumes it: only the missing parts are sent.
    """


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.argument("dest")
@_connection_options
@click.option("--part-size", type=SIZE, default="8MiB", show_default=True,
              help="Preferred part size (grows for files over 10,000 parts).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parts in flight (peak memory is about concurrency x part size).")
@click.option("--checksum", type=click.Choice(["none", "crc32", "sha1", "sha256"]),
              default="none", show_default=True, help="S3 additional checksum per part.")
@click.option("--bwlimit", type=SIZE, default=None, help="Bandwidth limit per second (8MiB).")
@click.option("--on-upload-gone", type=click.Choice(["restart", "fail"]), default="restart",
              show_default=True, help="If the open upload was aborted behind our back.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result per file.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def upload(sources: tuple[str, ...], dest: str, endpoint_url: str | None, api: str | None,
           token: str | None, state_dir: str | None, part_size: int, concurrency: int,
           checksum: str, bwlimit: int | None, on_upload_gone: str, as_json: bool,
           no_progress: bool) -> None:
    """Upload SOURCES (files, directories, globs, fsspec URLs) to DEST (s3://bucket/key,
    or s3://bucket/prefix/ for several files)."""
    config = UploadConfig.from_options(part_size=part_size, concurrency=concurrency,
                                       checksum=checksum, bwlimit=bwlimit,
                                       on_upload_gone=on_upload_gone)
    target = Destination.parse(dest)
    files = list(_expand(sources))
    if not files:
        raise SourceError(f"{' '.join(sources)}: no files to upload")
    if (len(files) > 1 or len(sources) > 1) and not target.is_prefix:
        raise ConfigError(f"several files go to a prefix: end {dest} with '/'")
    control = _control(endpoint_url, api, token, concurrency)
    state = StateStore(state_dir)
    failures = 0
    for source, name in files:
        destination = target.child(name) if target.is_prefix else target
        try:
            _upload_one(source, destination, control, config, state,
                        progress=not no_progress, as_json=as_json)
        except StreamifyError as exc:
            if len(files) == 1:
                raise
            failures += 1
            click.echo(f"streamify: error: {exc}", err=True)
    if failures:
        raise StreamifyError(f"{failures} of {len(files)} files failed; rerun the same "
                             "command to resume them")


@cli.command()
@click.argument("dest", required=False)
@_connection_options
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result per file.")
@click.option("--no-progress", is_flag=True)
def resume(dest: str | None, endpoint_url: str | None, api: str | None, token: str | None,
           state_dir: str | None, concurrency: int, as_json: bool, no_progress: bool) -> None:
    """Resume this machine's unfinished uploads (all, or the one to DEST)."""
    state = StateStore(state_dir)
    pending = [s for s in state.all() if dest is None or s.destination.url == dest]
    if not pending:
        click.echo("nothing to resume" + (f" for {dest}" if dest else ""), err=True)
        return
    for item in pending:
        control = _control(endpoint_url or (None if api else item.endpoint), api, token,
                           concurrency)
        config = UploadConfig(part_size=item.part_size, concurrency=concurrency,
                              checksum=item.checksum)  # type: ignore[arg-type]
        _upload_one(item.source, item.destination, control, config, state,
                    progress=not no_progress, as_json=as_json)


def _age(seconds_since_epoch: float) -> str:
    age = time.time() - seconds_since_epoch
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.1f}{unit}"
    return f"{age:.0f}s"


@cli.command()
@click.argument("where", required=False)
@_connection_options
def status(where: str | None, endpoint_url: str | None, api: str | None, token: str | None,
           state_dir: str | None) -> None:
    """Show this machine's unfinished uploads, and the open uploads under WHERE
    (s3://bucket/prefix) when given."""
    state = StateStore(state_dir)
    local = state.all()
    click.echo(f"unfinished uploads on this machine ({state.location}): {len(local)}")
    for item in local:
        control = _control(endpoint_url or (None if api else item.endpoint), api, token)
        try:
            parts = control.list_parts(item.destination, item.upload_id)
            there = f"{format_size(sum(p.size for p in parts))} of " \
                    f"{format_size(item.fingerprint.size)} in S3"
        except StreamifyError as exc:
            there = f"cannot ask S3: {exc}"
        click.echo(f"  {item.destination}  from {item.source}  upload {item.upload_id}  "
                   f"started {_age(item.created_at)} ago  {there}")
    if where is None:
        return
    target = Destination.parse(where)
    control = _control(endpoint_url, api, token)
    known = {s.upload_id for s in local}
    uploads = control.list_uploads(target)
    click.echo(f"open multipart uploads under {target}: {len(uploads)}")
    for upload_ in uploads:
        mark = " (this machine)" if upload_.upload_id in known else ""
        click.echo(f"  {upload_.destination}  upload {upload_.upload_id}  "
                   f"started {_age(upload_.initiated)} ago{mark}")


@cli.command()
@click.argument("dest")
@_connection_options
@click.option("--upload-id", help="Abort only this upload id (default: every open upload "
              "to DEST).")
def abort(dest: str, endpoint_url: str | None, api: str | None, token: str | None,
          state_dir: str | None, upload_id: str | None) -> None:
    """Abort the open upload(s) to DEST and forget their resume state."""
    target = Destination.parse(dest)
    control = _control(endpoint_url, api, token)
    state = StateStore(state_dir)
    ids = {u.upload_id for u in control.list_uploads(target) if u.destination.key == target.key}
    recorded: ResumeState | None = state.load(control.endpoint, target)
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
    if not ids:
        click.echo(f"no open upload to {target}", err=True)


@cli.command()
@click.argument("where")
@_connection_options
@click.option("--older-than", default="7d", show_default=True,
              help="Abort uploads started longer ago than this (7d, 12h, 90m).")
@click.option("--all", "include_foreign", is_flag=True,
              help="Also abort uploads Streamify did not start.")
@click.option("--dry-run", is_flag=True, help="Only list what would be aborted.")
def gc(where: str, endpoint_url: str | None, api: str | None, token: str | None,
       state_dir: str | None, older_than: str, include_foreign: bool, dry_run: bool) -> None:
    """Abort stale multipart uploads under WHERE (s3://bucket/prefix)."""
    control = _control(endpoint_url, api, token)
    stale = collect_stale_uploads(control, Destination.parse(where), StateStore(state_dir),
                                  older_than=parse_duration(older_than),
                                  include_foreign=include_foreign, dry_run=dry_run)
    verb = "would abort" if dry_run else "aborted"
    for upload_ in stale:
        started = datetime.datetime.fromtimestamp(upload_.initiated, datetime.UTC)
        click.echo(f"{verb} {upload_.destination} upload {upload_.upload_id} "
                   f"(started {started:%Y-%m-%d %H:%M} UTC)")
    click.echo(f"{verb} {len(stale)} stale upload(s)", err=True)


@cli.command("setup-bucket")
@click.argument("bucket_url")
@click.option("--endpoint-url", envvar="STREAMIFY_ENDPOINT_URL")
@click.option("--abort-after", default="7d", show_default=True,
              help="Lifecycle: abort incomplete uploads after this many days.")
@click.option("--cors-origin", "origins", multiple=True, default=["*"], show_default=True,
              help="Origins allowed to PUT parts from a browser (repeat for several).")
@click.option("--create", is_flag=True, help="Create the bucket if it does not exist.")
def setup_bucket(bucket_url: str, endpoint_url: str | None, abort_after: str,
                 origins: tuple[str, ...], create: bool) -> None:
    """Apply the AbortIncompleteMultipartUpload lifecycle rule and the browser CORS rule."""
    bucket = Destination.parse(bucket_url).bucket
    days = max(1, round(parse_duration(abort_after) / 86400))
    plane = S3ControlPlane(endpoint_url=endpoint_url)
    if create:
        import botocore.exceptions

        try:
            plane.client.create_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                    "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    apply_bucket_rules(plane.client, bucket, abort_after_days=days, allowed_origins=origins)
    click.echo(f"s3://{bucket}: incomplete uploads abort after {days} day(s); CORS allows "
               f"{', '.join(origins)} with ETag exposed")


def _register_serve() -> None:
    try:
        from .server._command import serve
    except ImportError as exc:
        missing = exc.name or "a server dependency"

        @cli.command(context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def serve(args: tuple[str, ...]) -> None:
            """Run the API service (needs: pip install 'streamify[server]')."""
            raise ConfigError(f"the API service needs {missing}: pip install 'streamify[server]'")

        return
    cli.add_command(serve)


def _register_demo() -> None:
    from ._demo import demo

    cli.add_command(demo)


_register_serve()
_register_demo()


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"streamify: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``streamify`` command."""
    try:
        code = cli.main(args=argv, prog_name="streamify", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted; rerun the same command to resume", 130)
    except KeyboardInterrupt:
        _fail("interrupted; rerun the same command to resume", 130)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a bare `streamify` asks for the help text, not an error line
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # One line like every other error: click's own form spans four.
        hint = (f" (see `{exc.ctx.command_path} --help`)"
                if isinstance(exc, click.UsageError) and exc.ctx is not None else "")
        _fail(exc.format_message().rstrip(".") + hint, exc.exit_code)
    except StreamifyError as exc:
        if os.environ.get("STREAMIFY_DEBUG"):
            raise
        _fail(str(exc), exc.exit_code)
    except Exception as exc:
        if os.environ.get("STREAMIFY_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set STREAMIFY_DEBUG=1 for details)", 1)
    sys.exit(code if isinstance(code, int) else 0)
