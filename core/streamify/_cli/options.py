"""Options several commands share, and the control plane they build from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from .._config import MAX_PART_SIZE, MIN_PART_SIZE
from .._control import ControlPlane
from .._errors import ConfigError
from .._units import parse_size

if TYPE_CHECKING:
    from .._state import ResumeState

__all__ = ["BANDWIDTH", "PART_SIZE", "ControlPlanes", "Size", "connection_options",
           "refuse_token_without_api"]


class Size(click.ParamType):  # type: ignore[type-arg]
    """A size like ``8MiB``; outside ``minimum`` or ``maximum`` bytes, ``rule`` says why."""

    name = "size"

    def __init__(self, minimum: int | None = None, maximum: int | None = None,
                 rule: str = "") -> None:
        self._minimum, self._maximum, self._rule = minimum, maximum, rule

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        if ((self._minimum is not None and size < self._minimum)
                or (self._maximum is not None and size > self._maximum)):
            self.fail(f"{value}: {self._rule}", param, ctx)
        return size


PART_SIZE = Size(MIN_PART_SIZE, MAX_PART_SIZE, "S3 parts are 5MiB to 5GiB")
BANDWIDTH = Size(64 * 1024, None, "the cap is at least 64KiB per second")


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--endpoint-url``, ``--api``, ``--token`` and ``--state-dir``."""
    for option in reversed([
        click.option("--endpoint-url", envvar="STREAMIFY_ENDPOINT_URL",
                     help="S3 endpoint (default: AWS, or AWS_ENDPOINT_URL)."),
        click.option("--api", envvar="STREAMIFY_API_URL",
                     help="Use a Streamify API service instead of S3 credentials."),
        click.option("--token", envvar="STREAMIFY_TOKEN",
                     help="API key for the API service (or set STREAMIFY_TOKEN)."),
        click.option("--state-dir", envvar="STREAMIFY_STATE_DIR",
                     help="Where resume states live (a directory or fsspec URL)."),
    ]):
        func = option(func)
    return func


def refuse_token_without_api(api: str | None) -> None:
    """``--token`` on the command line means the user expects the API service: say so
    rather than silently going straight to S3 with other credentials."""
    ctx = click.get_current_context()
    if api is None and ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE:
        raise click.UsageError("--token is the API key for --api: add --api URL, or drop "
                               "--token to use S3 credentials", ctx)


class ControlPlanes:
    """The control planes one command talks to, built once each and closed together.

    ``--api`` wins; otherwise an upload recorded as made through an API service goes back
    to that service, and any other to ``--endpoint-url`` or the endpoint it recorded.
    """

    def __init__(self, *, endpoint_url: str | None, api: str | None, token: str | None,
                 pool: int = 4) -> None:
        self._endpoint_url = endpoint_url
        self._api = api
        self._token = token
        self._pool = pool
        self._made: dict[tuple[str, str | None], ControlPlane] = {}

    def default(self) -> ControlPlane:
        """For a command given a destination: ``--api``, or S3 at ``--endpoint-url``."""
        if self._api:
            return self._get("api", self._api)
        return self._get("s3", self._endpoint_url)

    def for_state(self, state: ResumeState) -> ControlPlane:
        """For an upload recorded in the resume state."""
        if self._api:
            return self._get("api", self._api)
        if state.api_url:
            return self._get("api", state.api_url)
        return self._get("s3", self._endpoint_url or state.endpoint)

    def _get(self, kind: str, url: str | None) -> ControlPlane:
        if (kind, url) not in self._made:
            self._made[kind, url] = self._make(kind, url)
        return self._made[kind, url]

    def _make(self, kind: str, url: str | None) -> ControlPlane:
        if kind == "s3":
            from .._s3control import S3ControlPlane  # boto3 only when direct mode needs it

            return S3ControlPlane(endpoint_url=url, max_pool_connections=max(10, self._pool * 2))
        from .._httpcontrol import HttpControlPlane

        assert url is not None
        if not self._token:
            raise ConfigError(f"the API service at {url} needs a token: pass --token or set "
                              "STREAMIFY_TOKEN")
        return HttpControlPlane(url, token=self._token, pool_size=max(16, self._pool * 2))

    def close(self) -> None:
        for plane in self._made.values():
            plane.close()
