"""``UploadOptions``: the operator's options as Jinja rendered them, read and validated.

Every option of the operator is a template field, so a value may arrive as what the DAG
wrote (``4``, ``{"team": "news"}``) or as the text Jinja rendered (``"4"``,
``"{'team': 'news'}"``), or, with ``render_template_as_native_obj=True``, as the native
object. Both are read here, at execute time, and a value that means nothing fails the
task with one line naming the option, the value and what is accepted.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamify import ConfigError, UploadConfig, parse_size

__all__ = ["MAX_METADATA_BYTES", "UploadOptions", "read_metadata"]

MAX_METADATA_BYTES = 2048
"""S3's limit on an object's user metadata: names and values together."""
_METADATA_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;\s*[\x20-\x7e]+)?")
_CHECKSUMS = ("none", "crc32", "sha1", "sha256", "crc64nvme")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True, kw_only=True)
class UploadOptions:
    """The options of one upload task, each converted and checked."""

    config: UploadConfig
    replace: bool = False
    content_type: str | None = None
    """``None``: told from the source's leading bytes when the task runs."""
    metadata: dict[str, str] = field(default_factory=dict)
    state_location: str | None = None
    progress_interval: float = 5.0

    @classmethod
    def read(cls, *, part_size: object = None, concurrency: object = None,
             checksum: object = None, bwlimit: object = None, replace: object = False,
             content_type: object = None, metadata: object = None,
             state_location: object = None, progress_interval: object = 5.0) -> UploadOptions:
        """Options as rendered (native objects or text); ``ConfigError`` names a bad one."""
        config = UploadConfig.from_options(
            part_size=_size("part_size", part_size, "5MiB to 5GiB"),
            concurrency=_whole("concurrency", concurrency, "1 to 64"),
            checksum=_checksum(checksum),
            bwlimit=_size("bwlimit", bwlimit, "64KiB/s or more"))
        return cls(config=config, replace=_flag("replace", replace),
                   content_type=_content_type(content_type),
                   metadata=read_metadata(metadata),
                   state_location=_text(state_location),
                   progress_interval=_seconds("progress_interval", progress_interval))


def read_metadata(value: object) -> dict[str, str]:
    """S3 user metadata from a mapping or its rendered text (JSON or a Python literal):
    names of 1-128 ASCII letters, digits, ``-`` or ``_``; values printable ASCII (numbers
    and booleans become text); at most 2 KiB in all."""
    if _blank(value):
        return {}
    mapping = _literal(value.strip()) if isinstance(value, str) else value
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"metadata={_shown(value)} is not a mapping: give a dict of names to "
                          'values, for example {"team": "news"}', parameter="metadata")
    metadata: dict[str, str] = {}
    for name, item in mapping.items():
        if not isinstance(name, str) or not _METADATA_NAME.fullmatch(name):
            raise ConfigError(f"metadata name {name!r} is not accepted: use 1-128 ASCII "
                              "letters, digits, '-' or '_'", parameter="metadata")
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str | int | float):
            text = str(item)
        else:
            raise ConfigError(f"metadata {name!r}={item!r} is not accepted: values are text, "
                              "numbers or booleans", parameter="metadata")
        if not (text.isascii() and text.isprintable()):
            raise ConfigError(f"metadata {name!r}={text!r} is not accepted: S3 keeps only "
                              "printable ASCII in metadata values", parameter="metadata")
        metadata[name] = text
    total = sum(len(name) + len(text) for name, text in metadata.items())
    if total > MAX_METADATA_BYTES:
        raise ConfigError(f"metadata is {total} bytes (names and values): S3 accepts at most "
                          f"{MAX_METADATA_BYTES}", parameter="metadata")
    return metadata


def _literal(text: str) -> object:
    """A rendered dict: JSON, or the Python literal Jinja writes for a dict."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _shown(value: object) -> str:
    return repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."


def _blank(value: object) -> bool:
    """Unset: ``None``, or the text Jinja renders for it (``"None"``), or nothing at all."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def _text(value: object) -> str | None:
    return None if _blank(value) else str(value).strip()


def _size(name: str, value: object, accepted: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_size(value.strip())
        except ConfigError:
            pass
    raise ConfigError(f"{name}={_shown(value)} is not a size: give bytes or text such as "
                      f'"16MiB" ({accepted})', parameter=name)


def _whole(name: str, value: object, accepted: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ConfigError(f"{name}={_shown(value)} is not a whole number: give {accepted}",
                      parameter=name)


def _checksum(value: object) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str) and value.strip().lower() in _CHECKSUMS:
        return value.strip().lower()
    raise ConfigError(f"checksum={_shown(value)} is not a checksum: give one of "
                      f"{', '.join(_CHECKSUMS)}", parameter="checksum")


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name}={_shown(value)} is not a boolean: give True or False",
                      parameter=name)


def _content_type(value: object) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str) and _CONTENT_TYPE.fullmatch(value.strip()):
        return value.strip()
    raise ConfigError(f"content_type={_shown(value)} is not a media type: give type/subtype "
                      'such as "video/mp4", or None to tell it from the source\'s first bytes',
                      parameter="content_type")


def _seconds(name: str, value: object) -> float:
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, int | float) and not isinstance(number, bool) and number > 0:
        return float(number)
    raise ConfigError(f"{name}={_shown(value)} is not accepted: give a number of seconds "
                      "above 0", parameter=name)
