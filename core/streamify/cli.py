"""The ``streamify`` command line.

Every error is one clear line on stderr and a non-zero exit code (the error's own
``exit_code``); ``STREAMIFY_DEBUG=1`` adds the traceback before that line, with the same
exit code. The commands' shared pieces live in ``streamify._cli``.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import NoReturn

import click

from . import __version__
from ._cli.options import (
    BANDWIDTH,
    PART_SIZE,
    ControlPlanes,
    connection_options,
    others_option,
    refuse_token_without_api,
    trust_state_option,
)
from ._config import UploadConfig
from ._destination import Destination
from ._errors import ConfigError, SourceError, StreamifyError

__all__ = ["main"]


class _LazyGroup(click.Group):
    """A group whose commands in other modules are imported only when one is run (or
    listed by --help), so ``streamify --version`` loads neither boto3 nor the service."""

    LAZY = {
        "abort": "._cli.housekeeping",
        "demo": "._demo",
        "gc": "._cli.housekeeping",
        "serve": ".server._command",
        "setup-bucket": "._cli.housekeeping",
        "status": "._cli.housekeeping",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.LAZY:
            self.add_command(_load_command(self.LAZY[cmd_name], cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def _load_command(module_name: str, name: str) -> click.Command:
    try:
        module = importlib.import_module(module_name, __package__)
    except ImportError as exc:
        if name != "serve":
            raise
        return _serve_needs_the_extra(exc.name or "a server dependency")
    command = getattr(module, name.replace("-", "_"))
    assert isinstance(command, click.Command)
    return command


def _serve_needs_the_extra(missing: str) -> click.Command:
    @click.command(context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def serve(args: tuple[str, ...]) -> None:
        """Run the API service (needs: pip install 'streamify[server]')."""
        raise ConfigError(f"the API service needs {missing}: pip install 'streamify[server]'")

    return serve


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamify")
def cli() -> None:
    """Resumable, parallel, verified uploads of large files to S3.

    Rerunning an interrupted `streamify upload` resumes it: only the missing parts are sent.
    """


_jobs_option = click.option(
    "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
    help="Files uploaded at once, over one connection pool; files of one part run up to "
         "concurrency times as many (peak memory is about jobs x concurrency x part size).")
_bwlimit_option = click.option(
    "--bwlimit", type=BANDWIDTH, default=None,
    help="Cap the upload rate, in bytes per second for the whole command, e.g. 20MiB "
         "(default: no cap).")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.argument("dest")
@connection_options
@click.option("--part-size", type=PART_SIZE, default="8MiB", show_default=True,
              help="Preferred part size (grows for files over 10,000 parts).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parts in flight per file (peak memory is about concurrency x part size).")
@_jobs_option
@click.option("--checksum", type=click.Choice(["none", "crc32", "sha1", "sha256", "crc64nvme"]),
              default="none", show_default=True,
              help="S3 additional checksum per part (crc64nvme: also checked on the whole "
                   "object; needs the crc extra).")
@click.option("--no-content-md5", is_flag=True,
              help="Check parts by --checksum alone, without Content-MD5 (less CPU): only "
                   "for stores that verify additional checksums, such as AWS S3.")
@_bwlimit_option
@click.option("--on-upload-gone", type=click.Choice(["restart", "fail"]), default="restart",
              show_default=True, help="If the open upload was aborted behind our back.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result per file.")
@click.option("--no-progress", is_flag=True,
              help="No progress bar (there is none when stderr is not a terminal either).")
def upload(sources: tuple[str, ...], dest: str, endpoint_url: str | None, api: str | None,
           token: str | None, state_dir: str | None, part_size: int, concurrency: int,
           jobs: int, checksum: str, no_content_md5: bool, bwlimit: int | None,
           on_upload_gone: str, as_json: bool, no_progress: bool) -> None:
    """Upload SOURCES (files, directories, globs, fsspec URLs) to DEST (s3://bucket/key,
    or s3://bucket/prefix/ for several files: a file keeps its name, a directory keeps its
    own name and its layout under the prefix). An s3:// source is read from the
    --endpoint-url store too, unless fsspec's configuration names another."""
    from ._batch import BatchFile
    from ._cli.batch import run_batch
    from ._cli.progress import wants_bar
    from ._cli.sources import expand_sources, s3_sources_at
    from ._state import StateStore

    refuse_token_without_api(api)
    config = UploadConfig.from_options(part_size=part_size, concurrency=concurrency,
                                       checksum=checksum, bwlimit=bwlimit,
                                       content_md5=not no_content_md5,
                                       on_upload_gone=on_upload_gone)
    target = Destination.parse(dest)
    if "-" in sources:
        _upload_stdin(sources, target, config, ControlPlanes(
            endpoint_url=endpoint_url, api=api, token=token, pool=concurrency), as_json)
        return
    with s3_sources_at(endpoint_url, sources):
        files = expand_sources(sources)
        if not files:
            raise SourceError(f"{' '.join(sources)}: no files to upload")
        if (len(files) > 1 or len(sources) > 1) and not target.is_prefix:
            raise ConfigError(f"several files go to a prefix: end {dest} with '/'")
        planes = ControlPlanes(endpoint_url=endpoint_url, api=api, token=token,
                               pool=concurrency * min(jobs, len(files)))
        control = planes.default()
        try:
            run_batch([BatchFile(source, target.child(name) if target.is_prefix else target,
                                 control, config) for source, name in files],
                      state=StateStore(state_dir), config=config, jobs=jobs,
                      bar=wants_bar(no_progress=no_progress, as_json=as_json),
                      as_json=as_json)
        finally:
            planes.close()


def _upload_stdin(sources: tuple[str, ...], target: Destination, config: UploadConfig,
                  planes: ControlPlanes, as_json: bool) -> None:
    """``-`` as the source: standard input, a stream of unknown size. It is retried within
    this run but cannot resume after a crash (its bytes cannot be read again)."""
    import sys

    from ._cli.results import result_line
    from ._stream import StreamWriter, write_stream

    if sources != ("-",) or target.is_prefix:
        raise ConfigError("standard input ('-') is uploaded alone, to a full "
                          "s3://bucket/key destination")
    try:
        writer = StreamWriter(target, control=planes.default(), config=config)
        result = write_stream(writer, sys.stdin.buffer)
    finally:
        planes.close()
    click.echo(result_line(result, "-", as_json=as_json))


@cli.command()
@click.argument("dest", required=False)
@connection_options
@trust_state_option
@others_option
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parts in flight per file.")
@_jobs_option
@_bwlimit_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result per file.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def resume(dest: str | None, endpoint_url: str | None, api: str | None, token: str | None,
           state_dir: str | None, trust_state_endpoint: bool, include_others: bool,
           concurrency: int, jobs: int, bwlimit: int | None, as_json: bool,
           no_progress: bool) -> None:
    """Resume your unfinished uploads in the state store (all, or the one to DEST), where
    this command is pointed: S3 at --endpoint-url, or the API service at --api with its
    token. A state naming another endpoint is refused (see --trust-state-endpoint)."""
    from ._batch import BatchFile
    from ._cli.batch import run_batch
    from ._cli.progress import notice, wants_bar
    from ._state import StateStore

    refuse_token_without_api(api)
    state = StateStore(state_dir)
    found = [s for s in state.all() if dest is None or s.destination.url == dest]
    planes = ControlPlanes(endpoint_url=endpoint_url, api=api, token=token,
                           pool=concurrency * min(jobs, max(1, len(found))),
                           trust_state_endpoint=trust_state_endpoint)
    try:
        pending = (found if dest is not None or include_others
                   else [s for s in found if planes.started(s)])
        others = len(found) - len(pending)
        if others:
            notice(f"{others} unfinished upload(s) in {state.location} were started with "
                   "other credentials, or before Streamify recorded who started them: "
                   "`streamify resume --all` resumes them too")
        if not pending:
            click.echo("nothing to resume" + (f" for {dest}" if dest else ""), err=True)
            return
        base = UploadConfig.from_options(concurrency=concurrency, bwlimit=bwlimit)
        todo, refused = [], 0
        for item in pending:
            try:
                control = planes.for_state(item, state)
            except ConfigError as exc:
                if len(pending) == 1:
                    raise
                notice(f"streamify: error: {exc}")
                refused += 1
                continue
            todo.append(BatchFile(item.source, item.destination, control,
                                  base.replace(part_size=item.part_size,
                                               checksum=item.checksum)))
        if todo:
            run_batch(todo, state=state, config=base, jobs=jobs,
                      bar=wants_bar(no_progress=no_progress, as_json=as_json),
                      as_json=as_json)
    finally:
        planes.close()
    if refused:
        raise ConfigError(f"{refused} of {len(pending)} uploads were not resumed: their "
                          "states name another endpoint (see above)")


def _show_traceback_when_debugging() -> None:
    """With ``STREAMIFY_DEBUG`` set, the traceback of the error being handled; the error
    line and its exit code follow as without it, so scripts see the same code."""
    if os.environ.get("STREAMIFY_DEBUG"):
        traceback.print_exc()


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"streamify: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``streamify`` command."""
    try:
        code = cli.main(args=argv, prog_name="streamify", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
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
        _show_traceback_when_debugging()
        _fail(str(exc), exc.exit_code)
    except Exception as exc:
        _show_traceback_when_debugging()
        _fail(f"unexpected {type(exc).__name__}: {exc} (set STREAMIFY_DEBUG=1 for details)", 1)
    sys.exit(code if isinstance(code, int) else 0)
