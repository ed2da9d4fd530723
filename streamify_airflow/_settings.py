"""``ConnectionSettings``: what a Streamify (or AWS) connection says, read without any I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from streamify import ConfigError

from ._provider import CONNECTION_TYPE

__all__ = ["ConnectionLike", "ConnectionSettings", "Mode"]

Mode = Literal["direct", "api"]
_MODES: tuple[Mode, ...] = ("direct", "api")


class ConnectionLike(Protocol):
    """The fields of an Airflow connection this provider reads."""

    conn_id: str
    conn_type: str | None
    host: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """How to reach storage: ``direct`` (S3 with credentials) or ``api`` (an API service)."""

    conn_id: str
    mode: Mode = "direct"
    endpoint_url: str | None = None
    """``api``: the service's base URL. ``direct``: the S3 endpoint (``None`` for AWS)."""
    api_key: str | None = None
    region: str | None = None
    state_location: str | None = None
    """A directory or fsspec URL for resume hints; ``None`` for the core's default."""
    aws_conn_id: str | None = None
    """``direct``: an Airflow AWS connection that provides credentials, region, endpoint."""

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> ConnectionSettings:
        """Read a ``streamify`` connection, or an ``aws`` one (direct mode through it)."""
        where = f"connection {conn.conn_id!r}"
        if conn.conn_type == "aws":
            return cls(conn_id=conn.conn_id, aws_conn_id=conn.conn_id)
        if conn.conn_type != CONNECTION_TYPE:
            raise ConfigError(f"{where} has type {conn.conn_type!r}; Streamify needs a "
                              f"{CONNECTION_TYPE!r} connection (or an 'aws' one): fix its type")
        extra: Mapping[str, Any] = conn.extra_dejson
        mode = _text(extra, "mode") or "direct"
        if mode not in _MODES:
            raise ConfigError(f"{where}: mode {mode!r} is unknown; set its mode to 'direct' "
                              "(S3 with credentials) or 'api' (a Streamify API service)")
        endpoint = (conn.host or "").strip() or None
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: endpoint URL {endpoint!r} must start with http:// or "
                              "https://, for example http://127.0.0.1:8080")
        settings = cls(conn_id=conn.conn_id, mode=mode,
                       endpoint_url=endpoint, api_key=conn.password or None,
                       region=_text(extra, "region"),
                       state_location=_text(extra, "state_location"),
                       aws_conn_id=_text(extra, "aws_conn_id"))
        if settings.mode == "api" and (settings.endpoint_url is None or not settings.api_key):
            raise ConfigError(f"{where} is in API mode but lacks the service's endpoint URL "
                              "or its API key: set both (host and password)")
        if settings.mode == "api" and settings.aws_conn_id:
            raise ConfigError(f"{where} is in API mode, which needs no AWS credentials: "
                              "remove its AWS connection or switch it to direct mode")
        return settings


def _text(extra: Mapping[str, Any], name: str) -> str | None:
    value = extra.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None
