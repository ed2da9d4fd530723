"""``streamify serve``: run the API service with uvicorn."""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Any

import click
import pydantic
import uvicorn
from fastapi import FastAPI

from ._app import create_app
from ._drain import DrainingServer
from ._local import (
    bind_socket,
    local_s3,
    local_settings,
    local_stack_app,
    new_api_key,
    socket_url,
)
from ._protocol import server_options
from ._settings import CONFIG_FILE_ENV, ServiceSettings, load_settings
from ._signin import SignInLink, add_sign_in_link

__all__ = ["serve"]


# Applied by uvicorn in every worker process: every line one JSON object with the request
# id (_logs); uvicorn's own access log is off because it prints query strings.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "streamify.server._logs.JsonLogFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


def _settings(config_file: str | None) -> ServiceSettings:
    try:
        return load_settings(config_file)
    except pydantic.ValidationError as exc:
        # Without the inputs: a rejected value may be a secret.
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        raise click.ClickException(f"invalid settings: {problems} (set STREAMIFY_* "
                                   "variables or pass --config FILE)") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the settings: {exc}") from exc


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.UsageError(f"port {port} on {host} is already in use: stop what "
                                   "listens there, or choose another with --port (--port 0 "
                                   "picks a free one)") from exc
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose "
                               "another address with --host or --port") from exc


def _run(app: FastAPI, sock: socket.socket) -> None:
    settings: ServiceSettings = app.state.settings
    config = uvicorn.Config(app, log_config=LOG_CONFIG, access_log=False,
                            timeout_graceful_shutdown=settings.drain_deadline,
                            **server_options(settings))
    DrainingServer(config, drain=app.state.drain, delay=settings.drain_delay).run(
        sockets=[sock])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (the service is stateless, so they share nothing).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML or JSON settings file; STREAMIFY_* variables override it.")
@click.option("--local", is_flag=True,
              help="Also run an in-process S3 emulator (moto) with a ready bucket and a "
                   "fresh API key: a whole working system on this machine.")
def serve(host: str, port: int, workers: int, config_file: str | None, local: bool) -> None:
    """Run the Streamify API service (the control plane for browsers and untrusted clients).

    Settings come from STREAMIFY_* environment variables and --config: STREAMIFY_BUCKET,
    STREAMIFY_S3_ENDPOINT_URL, STREAMIFY_PRINCIPALS (JSON), STREAMIFY_COOKIE_SECRET...
    """
    if local:
        if workers != 1 or config_file:
            raise click.UsageError("--local runs one worker with its own settings: drop "
                                   "--workers and --config")
        _serve_local(host, port)
        return
    settings = _settings(config_file)
    if workers == 1:
        _run(create_app(settings), _listen(host, port))
        return
    _listen(host, port).close()  # uvicorn binds it again; a busy port fails here, clearly
    if config_file:
        # The worker processes rebuild the settings from the environment.
        os.environ[CONFIG_FILE_ENV] = os.path.abspath(config_file)
    # uvicorn's supervisor: on SIGTERM its workers stop at once (no drain_delay), then
    # have drain_deadline to finish. Behind a load balancer, run one worker a replica.
    uvicorn.run("streamify.server._app:app_from_environment", factory=True, host=host,
                port=port, workers=workers, log_config=LOG_CONFIG, access_log=False,
                timeout_graceful_shutdown=settings.drain_deadline,
                **server_options(settings))


def _serve_local(host: str, port: int) -> None:
    token = new_api_key()
    with local_s3(host=host) as endpoint:
        settings = local_settings(s3_endpoint=endpoint, token=token)
        sock = _listen(host, port)
        app = local_stack_app(settings)
        link = SignInLink(token)
        add_sign_in_link(app, link)
        # Printed once, for the person who started it; it is never logged.
        click.echo(f"Streamify API: {socket_url(sock)}\n"
                   f"S3 endpoint:   {endpoint}\n"
                   f"Bucket:        {settings.bucket}\n"
                   f"Token:         {token}\n"
                   f"Upload page:   {link.url(socket_url(sock))}\n"
                   "               (open it and drop a video; the link signs in once)")
        sys.stdout.flush()
        _run(app, sock)
