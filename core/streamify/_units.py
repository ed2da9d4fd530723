"""Parsing and printing sizes (``8MiB``, ``64MB``) and durations (``7d``, ``90m``)."""

from __future__ import annotations

import re

from ._errors import ConfigError

__all__ = ["format_size", "parse_duration", "parse_size"]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_size(text: str | int) -> int:
    """Return the number of bytes in ``text``: ``"8MiB"`` -> 8388608, ``"64MB"`` -> 64000000."""
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"size {text} is negative; give a number of bytes such as 8MiB")
        return text
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ConfigError(
            f"cannot read size {text!r}: use a number with an optional unit "
            "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), for example 8MiB"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(text: str | float) -> float:
    """Return seconds in ``text``: ``"7d"``, ``"12h"``, ``"90m"``, ``"30s"`` or a bare number."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION_RE.match(text)
    if match is None:
        raise ConfigError(
            f"cannot read duration {text!r}: use a number with s, m, h, d or w, for example 7d"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def format_size(size: float) -> str:
    """Print a byte count the way people read it: ``512.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
