"""``ServiceSettings``: everything the API service is configured with, in one place.

Values come from, highest priority first: keyword arguments, ``STREAMIFY_*`` environment
variables, and a TOML or JSON config file (``--config`` or ``STREAMIFY_CONFIG_FILE``).
API keys are never configured in clear: each principal carries the SHA-256 (hex) of its
key, made with :func:`hash_api_key`. The principals may instead come from a file of their
own (``principals_file``); the running service re-reads whichever file they come from
(``_reload.py``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .._plan import MAX_OBJECT_SIZE

__all__ = [
    "PrincipalSettings",
    "ServiceSettings",
    "describe_invalid",
    "hash_api_key",
    "load_settings",
    "parse_principals",
]

CONFIG_FILE_ENV = "STREAMIFY_CONFIG_FILE"


def hash_api_key(key: str) -> str:
    """The value to put in a principal's ``key_sha256`` for the API key ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


class PrincipalSettings(BaseModel):
    """One caller of the API: who it is, which keys it owns, how big its objects may be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
    key_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """SHA-256 (lowercase hex) of the principal's API key."""
    prefix: str = ""
    """Every key this principal touches starts with it; ``""`` is the whole bucket."""
    max_object_size: Annotated[int, Field(gt=0, le=MAX_OBJECT_SIZE)] = MAX_OBJECT_SIZE

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, prefix: str) -> str:
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise ValueError("prefix must not start with '/' nor contain '..' segments")
        if prefix and not prefix.endswith("/"):
            # Without the slash, "users/al" would also own "users/alice/...".
            raise ValueError("a non-empty prefix must end with '/'")
        return prefix


def _check_distinct(principals: tuple[PrincipalSettings, ...]) -> None:
    names = [p.name for p in principals]
    hashes = [p.key_sha256 for p in principals]
    if len(set(names)) != len(names) or len(set(hashes)) != len(hashes):
        raise ValueError("principal names and keys must be unique")


class _PrincipalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principals: tuple[PrincipalSettings, ...]


def describe_invalid(exc: ValidationError) -> str:
    """What is wrong, field by field, without the rejected values (one may be a secret)."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'file'}: {e['msg']}"
                     for e in exc.errors(include_input=False, include_url=False))


def parse_principals(content: bytes, path: Path) -> tuple[PrincipalSettings, ...]:
    """The principals a principals file holds: ``principals``, a list of tables (TOML,
    when ``path`` ends in ``.toml``) or of objects (JSON), and nothing else. Raises
    ``ValueError`` saying what is wrong, without the values."""
    try:
        data = (tomllib.loads(content.decode()) if path.suffix == ".toml"
                else json.loads(content))
        principals = _PrincipalsFile.model_validate(data).principals
    except ValidationError as exc:
        raise ValueError(describe_invalid(exc)) from None
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    _check_distinct(principals)
    return principals


class ServiceSettings(BaseSettings):
    """How the API service runs. Frozen; build one per app with :func:`load_settings` or
    directly with keyword arguments."""

    model_config = SettingsConfigDict(env_prefix="STREAMIFY_", frozen=True, extra="ignore")

    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    s3_endpoint_url: str | None = None
    """``None`` means AWS S3 itself."""
    region: str = "us-east-1"
    principals: tuple[PrincipalSettings, ...] = ()
    principals_file: Path | None = None
    """A TOML or JSON file holding only ``principals`` (a mounted secret or config map,
    say), read instead of the ``principals`` setting; give one or the other."""
    reload_interval: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """Seconds between two looks at the file the principals come from (``principals_file``,
    else the config file): a changed file's principals are in force within this time, on
    every replica. Every other setting takes effect on restart only."""
    cookie_secret: Annotated[SecretStr, Field(min_length=16)]
    """Signs the browser session cookie and Companion upload ids; share it between
    instances behind one balancer. Changing it ends every session and every Companion
    upload in progress, unless the old one stays in ``previous_cookie_secrets``."""
    previous_cookie_secrets: tuple[Annotated[SecretStr, Field(min_length=16)], ...] = ()
    """Secrets still accepted on cookies and Companion upload ids made before a change of
    ``cookie_secret``; never used to make new ones."""
    session_ttl: Annotated[int, Field(ge=60, le=30 * 86400)] = 12 * 3600
    cookie_secure: bool = False
    """Always mark the session cookie ``Secure``. It is also ``Secure`` on its own whenever
    the request came over HTTPS (directly, or by ``X-Forwarded-Proto`` from a trusted
    proxy)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of the proxies in front of the service. Only
    requests from them may set the client address and scheme with ``X-Forwarded-For`` and
    ``X-Forwarded-Proto``; from anyone else those headers are ignored."""
    url_expiry: Annotated[int, Field(ge=1, le=7 * 86400)] = 900
    """Longest lifetime, in seconds, of a presigned URL handed out."""
    part_size: Annotated[int, Field(ge=5 * 1024**2, le=5 * 1024**3)] = 8 * 1024**2
    """Part size planned for uploads whose client does not ask for one."""
    max_body_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024**2)] = 2 * 1024**2
    """Largest request body accepted; a 10,000-part completion needs about 1 MB."""
    max_sign_batch: Annotated[int, Field(ge=1, le=1000)] = 100
    """Most parts signed in one call (Uppy signs one, the core at most its concurrency)."""
    sign_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    """Sign calls served at once per instance; more wait their turn, off the event loop."""
    rate_limit: Annotated[float, Field(gt=0, le=100_000)] = 200.0
    """Requests per second each principal may make, sustained; a sign call counts one more
    per part. Beyond it the service answers 429 with ``Retry-After``."""
    rate_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 400
    """How far above ``rate_limit`` a principal may go in a short burst."""
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 8
    """Requests each principal may have in flight at once (on this instance, or on all of
    them together with ``redis_url``); more are
    answered 429 with ``Retry-After`` at once, so that one principal's expensive calls
    never hold every worker thread. A browser tab sends at most 6 at once;
    ``streamify upload DIR`` may start up to 16 small files at once, and waits out the
    429s (raise it for such principals' throughput, at the cost of the others' latency:
    ``benchmarks/fair_share.py``)."""
    max_open_uploads: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Open multipart uploads a principal may have at once; abort or finish one to start
    another (abandoned parts stay bounded)."""
    redis_url: SecretStr | None = None
    """The Redis that holds the limits above (``rate_limit``, ``rate_burst``,
    ``max_in_flight``, ``max_open_uploads``) for every replica, so that N replicas behind
    a balancer allow each principal the limits once, not N times: ``redis://host:6379/0``,
    ``rediss://`` for TLS, a password as ``redis://:password@host``. ``None`` (the
    default) keeps the limits in this process, right for a single replica. While the
    store is unreachable, calls on uploads already started go through unlimited and new
    uploads are refused with 503 (``_shared_limits.py``)."""
    header_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Seconds a client has to send a request's headers, from the moment it connects or
    sends the first byte of a later request, before it is answered 408 and disconnected."""
    body_timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Seconds a client has to send a whole request body; then it is answered 408."""
    docs: bool = False
    """Serve the API documentation pages ``/docs`` and ``/redoc``. Off by default: they load
    Swagger UI and ReDoc from a public CDN onto the API's origin. The OpenAPI document,
    ``/openapi.json``, is always served (it holds no script)."""
    static_dir: Path | None = None
    """Served at ``/ui/`` when set (same origin as the API, so the session cookie works)."""
    metrics: bool = True
    """Serve Prometheus metrics at ``/metrics``. They need no credentials and name no key,
    principal or secret; expose the path only inside the cluster (the load balancer's
    public side should not route it), or switch it off here."""
    ready_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    """Seconds each ``/readyz`` check (storage's HEAD of the bucket, the limits store's
    PING) may take before it counts as failed (``timeout``). Keep it under the load
    balancer's check timeout (HAProxy ``timeout check``)."""
    drain_delay: Annotated[float, Field(ge=0, le=300)] = 5.0
    """Seconds a replica keeps serving after SIGTERM while ``/readyz`` answers 503, so that
    its load balancer stops sending it requests before it stops accepting them: at least
    the balancer's check interval times the failed checks it needs (HAProxy ``inter 1s
    fall 2``: 2 s, plus margin)."""
    drain_deadline: Annotated[int, Field(ge=0, le=3600)] = 20
    """Whole seconds requests in flight then have to finish before they are cut and the
    process exits. ``drain_delay + drain_deadline`` must fit in the time the orchestrator
    waits between SIGTERM and SIGKILL (Kubernetes: 30 s; podman and Docker stop: 10 s
    unless ``--time`` / ``-t`` says more)."""

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_redis(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(
                ("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return url

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted proxy {proxy!r} is not an IP address or "
                                 "network") from exc
        return proxies

    _loaded_from: Path | None = PrivateAttr(default=None)

    @property
    def loaded_from(self) -> Path | None:
        """The config file these settings were read from by :func:`load_settings`."""
        return self._loaded_from

    @model_validator(mode="before")
    @classmethod
    def _principals_from_their_file(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("principals_file") is None:
            return data
        if data.get("principals"):
            raise ValueError("give principals or principals_file, not both")
        path = Path(data["principals_file"])
        try:
            principals = parse_principals(path.read_bytes(), path)
        except OSError as exc:
            raise ValueError(f"principals_file {path} cannot be read: {exc.strerror}") from None
        except ValueError as exc:
            raise ValueError(f"principals_file {path}: {exc}") from None
        return {**data, "principals": principals}

    @model_validator(mode="after")
    def _principals_are_distinct(self) -> ServiceSettings:
        _check_distinct(self.principals)
        return self


def load_settings(config_file: str | os.PathLike[str] | None = None) -> ServiceSettings:
    """Settings from the environment over ``config_file`` (``.toml`` or ``.json``).

    Without ``config_file``, the file named by ``STREAMIFY_CONFIG_FILE`` is used, if any:
    that is how the worker processes of ``streamify serve --workers N`` find it.
    """
    path = config_file or os.environ.get(CONFIG_FILE_ENV)
    if not path:
        return ServiceSettings()  # type: ignore[call-arg]
    file_path = Path(path)
    if not file_path.is_file():
        raise FileNotFoundError(f"config file {file_path} does not exist")

    class FileBackedSettings(ServiceSettings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            file_source: PydanticBaseSettingsSource
            if file_path.suffix == ".toml":
                file_source = TomlConfigSettingsSource(settings_cls, toml_file=file_path)
            else:
                file_source = JsonConfigSettingsSource(settings_cls, json_file=file_path)
            return init_settings, env_settings, file_source

    settings = FileBackedSettings()  # type: ignore[call-arg]
    settings._loaded_from = file_path.absolute()
    return settings
