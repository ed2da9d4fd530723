"""The embedded default: moto's S3 emulator and the API service, in-process, on loopback.

``streamify serve --local`` uses it to give a working system with one command; tests and
demos use :func:`start_local_stack` (everything in background threads) or its pieces,
:func:`local_s3` and :func:`serve_in_thread`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from .._housekeeping import apply_bucket_rules
from .._s3control import S3ControlPlane, s3_client
from ._app import create_app
from ._protocol import server_options
from ._settings import PrincipalSettings, ServiceSettings, hash_api_key

__all__ = [
    "LocalStack",
    "bind_socket",
    "local_s3",
    "local_settings",
    "local_stack_app",
    "new_api_key",
    "serve_in_thread",
    "socket_url",
    "start_local_stack",
]

LOCAL_BUCKET = "streamify"
LOCAL_REGION = "us-east-1"


@dataclass(frozen=True, kw_only=True)
class LocalStack:
    """A running local system: where the API and S3 are, and the API token to use."""

    api_url: str
    s3_endpoint: str
    bucket: str
    token: str
    """Bearer key of the principal ``local``; shown once, never logged."""
    settings: ServiceSettings


def _local_client(endpoint: str) -> S3ControlPlane:
    # moto accepts any credentials; fixed ones mean the user needs no AWS configuration.
    session = boto3.Session(region_name=LOCAL_REGION, aws_access_key_id="streamify-local",
                            aws_secret_access_key="streamify-local")  # noqa: S106
    return S3ControlPlane(s3_client(endpoint_url=endpoint, region=LOCAL_REGION,
                                    max_pool_connections=32, session=session))


@contextlib.contextmanager
def local_s3(*, host: str = "127.0.0.1", port: int = 0,
             bucket: str = LOCAL_BUCKET) -> Iterator[str]:
    """Run moto's S3 server in a thread with ``bucket`` ready (CORS and lifecycle rules set);
    yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # moto's request log would print presigned URLs, signatures included.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{bound_host}:{bound_port}"
        client = _local_client(endpoint).client
        # moto's state is per process: an earlier stack in it may have made the bucket.
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        # An emulator on this machine only: pages from any local origin may upload.
        apply_bucket_rules(client, bucket, allowed_origins=("*",))
        yield endpoint
    finally:
        server.stop()


def new_api_key() -> str:
    """A fresh random API key. The prefix keeps it from starting with ``-``, which a
    command line would read as an option, and makes it recognisable in a leaked file."""
    return "stfy_" + secrets.token_urlsafe(32)


def local_settings(*, s3_endpoint: str, bucket: str = LOCAL_BUCKET, token: str,
                   prefix: str = "", static_dir: str | os.PathLike[str] | None = None
                   ) -> ServiceSettings:
    """Settings for one principal ``local`` owning ``prefix`` (``""``: the whole bucket)."""
    return ServiceSettings(
        bucket=bucket, s3_endpoint_url=s3_endpoint, region=LOCAL_REGION,
        principals=(PrincipalSettings(name="local", key_sha256=hash_api_key(token),
                                      prefix=prefix),),
        cookie_secret=SecretStr(secrets.token_urlsafe(32)),
        static_dir=Path(static_dir) if static_dir is not None else None,
        drain_delay=0.0,  # no load balancer in front to tell: stop at once
    )


def local_stack_app(settings: ServiceSettings) -> FastAPI:
    """The app for local settings, talking to the emulator with its fixed credentials."""
    assert settings.s3_endpoint_url is not None
    return create_app(settings, control=_local_client(settings.s3_endpoint_url))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).

    It listens before the server starts, so a client told the address right away gets
    queued rather than refused.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def socket_url(sock: socket.socket) -> str:
    """The ``http://`` base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
                    timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn in a background thread; yield its base URL.

    The server shuts down (in-flight requests finish) when the ``with`` block ends.
    """
    sock = bind_socket(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, **server_options(app.state.settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="streamify-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@contextlib.contextmanager
def start_local_stack(*, host: str = "127.0.0.1", port: int = 0, s3_port: int = 0,
                      bucket: str = LOCAL_BUCKET, prefix: str = "",
                      static_dir: str | os.PathLike[str] | None = None
                      ) -> Iterator[LocalStack]:
    """Run moto and the API service in background threads; yield where they are.

    A fresh random API key is made for the principal ``local``, which owns ``prefix``.
    """
    token = new_api_key()
    with local_s3(host=host, port=s3_port, bucket=bucket) as endpoint:
        settings = local_settings(s3_endpoint=endpoint, bucket=bucket, token=token,
                                  prefix=prefix, static_dir=static_dir)
        with serve_in_thread(local_stack_app(settings), host=host, port=port) as api_url:
            yield LocalStack(api_url=api_url, s3_endpoint=endpoint, bucket=bucket, token=token,
                             settings=settings)
