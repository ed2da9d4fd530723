"""What ``streamify upload`` sends: files, directories, globs and fsspec URLs, with the
name each one gets under a destination prefix.

A file keeps its base name; a directory keeps its own name as the first path segment, so
``upload shoot/ s3://b/in/`` writes ``in/shoot/a.mov`` and ``in/shoot/day2/b.mov``.
An ``s3://`` source is read from the store ``--endpoint-url`` names (``s3_sources_at``).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from typing import Any

from .._errors import SourceError

__all__ = ["expand_sources", "s3_sources_at"]

_S3_PROTOCOLS = ("s3://", "s3a://")


@contextlib.contextmanager
def s3_sources_at(endpoint_url: str | None, sources: tuple[str, ...]) -> Iterator[None]:
    """While the command runs, ``s3://`` sources are read from ``endpoint_url`` too: the
    store the user pointed the command at. fsspec's own configuration of an s3 endpoint
    (``FSSPEC_S3``, ``fsspec.config.conf``) wins: that is how a copy between two stores
    names the other one. fsspec is imported only when there is such a source."""
    if endpoint_url is None or not any(src.startswith(_S3_PROTOCOLS) for src in sources):
        yield
        return
    import fsspec.config

    conf = fsspec.config.conf
    before = conf.get("s3")
    options = dict(before or {})
    if "endpoint_url" not in options and "endpoint_url" not in options.get("client_kwargs", {}):
        options["endpoint_url"] = endpoint_url
    conf["s3"] = options
    try:
        yield
    finally:
        if before is None:
            conf.pop("s3", None)
        else:
            conf["s3"] = before


def expand_sources(sources: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every (source, name under a destination prefix), in a stable order."""
    return [item for src in sources for item in _expand_one(src)]


def _expand_one(src: str) -> Iterator[tuple[str, str]]:
    if "://" in src and not src.startswith("file://"):
        yield from _expand_remote(src)
        return
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


def _expand_remote(src: str) -> Iterator[tuple[str, str]]:
    protocol = src.split("://", 1)[0]
    fs, path = _filesystem(src, protocol)
    matches = fs.glob(path) if glob.has_magic(path) else [path]
    if not matches:
        raise SourceError(f"{src}: matches no file")
    for match in matches:
        if fs.isdir(match):
            base = os.path.dirname(match.rstrip("/"))
            for found in sorted(fs.find(match)):
                yield fs.unstrip_protocol(found), os.path.relpath(found, base)
        else:
            # fs's own way back to a URL: http(s) paths already are whole URLs.
            yield fs.unstrip_protocol(match), os.path.basename(match)


def _filesystem(src: str, protocol: str) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(src)
    except ImportError as exc:
        raise SourceError(f"{src}: reading {protocol}:// URLs needs an extra package: "
                          f"{exc}") from exc
    except ValueError as exc:
        raise SourceError(f"{src}: unknown protocol {protocol!r}: use a local path or an "
                          "fsspec URL such as s3://, https://, sftp://, gcs://") from exc
    return fs, str(path)
