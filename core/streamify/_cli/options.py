"""Options several commands share, and the control plane they build from them."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import click
from click.core import ParameterSource

from .._config import MAX_PART_SIZE, MIN_PART_SIZE, UploadConfig
from .._control import ControlPlane
from .._errors import ConfigError
from .._units import parse_size

if TYPE_CHECKING:
    from .._calls import RetryingControlPlane
    from .._state import ResumeState, StateStore

__all__ = ["BANDWIDTH", "PART_SIZE", "ControlPlanes", "Place", "Size", "connection_options",
           "others_option", "refuse_token_without_api", "trust_state_option"]


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


trust_state_option = click.option(
    "--trust-state-endpoint", is_flag=True,
    help="Let a resume state's recorded endpoint or API service receive your credentials "
         "when it is not the one configured (only for a state store no one else can write).")

others_option = click.option(
    "--all", "include_others", is_flag=True,
    help="Also the uploads others started (a state store shared by several principals).")


def refuse_token_without_api(api: str | None) -> None:
    """``--token`` on the command line means the user expects the API service: say so
    rather than silently going straight to S3 with other credentials."""
    ctx = click.get_current_context()
    if api is None and ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE:
        raise click.UsageError("--token is the API key for --api: add --api URL, or drop "
                               "--token to use S3 credentials", ctx)


@dataclass(frozen=True)
class Place:
    """Where a control plane sends credentials: an S3 endpoint (SigV4 requests) or an API
    service (the API key)."""

    kind: Literal["s3", "api"]
    url: str

    @classmethod
    def of(cls, state: ResumeState) -> Place:
        """The place a resume state names: a hint of which configuration its upload
        belongs to, never a place to send credentials by itself."""
        return cls("api", state.api_url) if state.api_url else cls("s3", state.endpoint)

    def same_as(self, other: Place) -> bool:
        return self.kind == other.kind and _comparable(self.url) == _comparable(other.url)

    @property
    def flag(self) -> str:
        """The option that points a command here."""
        return "--api" if self.kind == "api" else "--endpoint-url"

    def __str__(self) -> str:
        return f"the API service at {self.url}" if self.kind == "api" else f"S3 at {self.url}"


def _comparable(url: str) -> tuple[str, str, int | None, str]:
    """A URL as far as where it sends requests: the case of scheme and host, a default
    port and a trailing ``/`` make no difference."""
    parts = urllib.parse.urlsplit(url.strip())
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")


class ControlPlanes:
    """The control planes one command talks to, built once each and closed together.

    Credentials go only where the user pointed the command: ``--api`` (with the token) or
    S3 at ``--endpoint-url`` (or the AWS default). A resume state that names another place
    is refused, unless ``trust_state_endpoint`` says the state store is trusted.
    """

    def __init__(self, *, endpoint_url: str | None, api: str | None, token: str | None,
                 pool: int = 4, trust_state_endpoint: bool = False) -> None:
        self._endpoint_url = endpoint_url
        self._api = api
        self._token = token
        self._pool = pool
        self._trust = trust_state_endpoint
        self._made: dict[tuple[str, str | None], RetryingControlPlane] = {}

    def default(self) -> ControlPlane:
        """The configured control plane: ``--api``, or S3 at ``--endpoint-url``."""
        if self._api:
            return self._get("api", self._api)
        return self._get("s3", self._endpoint_url)

    def place(self) -> Place:
        """Where the configured control plane sends credentials (no request is made)."""
        if self._api:
            return Place("api", self._api)
        return Place("s3", self.default().endpoint)

    def started(self, state: ResumeState) -> bool:
        """Whether the upload of ``state`` was started with the credentials this command
        holds for its kind of place: the API key, or the AWS credentials. (A principal
        does not depend on the host, so nothing is sent to learn it.)"""
        if state.api_url:
            if not (self._token or self._api):
                return False  # with --api, a missing token is an error worth saying
            plane = self._get("api", self._api or state.api_url)
        else:
            plane = self._get("s3", self._endpoint_url)
        return state.principal == getattr(plane, "principal", "")

    def for_state(self, state: ResumeState, store: StateStore) -> ControlPlane:
        """The configured control plane, when ``state`` names the configured place; with
        ``trust_state_endpoint``, one for the place it names; otherwise ``ConfigError``."""
        named, configured = Place.of(state), self.place()
        if named.same_as(configured):
            return self.default()
        if not self._trust:
            raise ConfigError(
                f"resume state {store.path_of(state)} for {state.destination} names {named}, "
                f"not {configured} where this command was pointed: credentials go only where "
                f"you point them. If it is yours, pass {named.flag} {named.url}; to trust "
                "this state store's endpoints, add --trust-state-endpoint")
        return self._get(named.kind, named.url)

    def require_place_for(self, bucket: str, states: list[ResumeState]) -> None:
        """Before a command goes to the default place (neither ``--endpoint-url`` nor
        ``--api`` given) about ``bucket``: if the ``states`` put that bucket only
        elsewhere, say which option to pass instead of asking the wrong store."""
        if self._api or self._endpoint_url:
            return
        known: list[Place] = []
        for item in states:
            place = Place.of(item)
            if item.destination.bucket == bucket and not any(place.same_as(k) for k in known):
                known.append(place)
        configured = self.place()
        if not known or any(place.same_as(configured) for place in known):
            return
        raise ConfigError(
            f"s3://{bucket}: no --endpoint-url or --api was given, so this would go to "
            f"{configured}, but your resume states have this bucket at "
            f"{' and '.join(map(str, known))}: pass "
            f"{' or '.join(f'{p.flag} {p.url}' for p in known)} (or --endpoint-url "
            f"{configured.url} to go there after all)")

    def _get(self, kind: str, url: str | None) -> ControlPlane:
        """The control plane for ``kind`` at ``url``, its calls retried under the default
        budget (an upload retries them under its own)."""
        if (kind, url) not in self._made:
            from .._calls import RetryingControlPlane  # urllib3 only when a command needs it

            self._made[kind, url] = RetryingControlPlane(self._make(kind, url), UploadConfig())
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
            plane.inner.close()
