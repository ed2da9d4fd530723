"""Object key rules: what a caller may name, decided before S3 sees anything. No I/O."""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_KEY_BYTES", "KeyRejected", "check_key", "check_prefix", "key_for_filename"]

MAX_KEY_BYTES = 1024


class KeyRejected(ValueError):
    """A key or prefix breaks a rule; ``str()`` says which, for the caller."""


def _is_forbidden(char: str) -> bool:
    """Control characters, lone surrogates and Unicode noncharacters: S3 answers keys in
    XML, which cannot carry them."""
    code = ord(char)
    return (unicodedata.category(char) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF
            or code & 0xFFFE == 0xFFFE)


def _check_syntax(key: str, what: str) -> None:
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise KeyRejected(f"{what} is longer than {MAX_KEY_BYTES} bytes (UTF-8)")
    if any(_is_forbidden(c) for c in key):
        raise KeyRejected(f"{what} contains a control character or a Unicode noncharacter")
    if key.startswith("/"):
        raise KeyRejected(f"{what} must not start with '/'")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise KeyRejected(f"{what} must not contain '.' or '..' segments")


def check_key(key: str) -> str:
    """Return ``key`` if it is a well-formed object key, else raise ``KeyRejected``."""
    if not key:
        raise KeyRejected("key is empty")
    _check_syntax(key, "key")
    if key.endswith("/"):
        raise KeyRejected("key ends with '/', which names a folder, not an object")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a well-formed key prefix (it may be empty)."""
    _check_syntax(prefix, "prefix")
    return prefix


def key_for_filename(filename: str, prefix: str) -> str:
    """The key a file called ``filename`` gets inside ``prefix``.

    Only the last path component of the name is kept (browsers may send a relative path),
    control characters are dropped, and the name is cut to fit S3's key length.
    """
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if not _is_forbidden(c)).strip()
    if name in ("", ".", ".."):
        name = "upload"
    room = MAX_KEY_BYTES - len(prefix.encode())
    if room <= 0:
        raise KeyRejected("the prefix leaves no room for a file name")
    # Cut on a character boundary so the key stays valid UTF-8.
    name = name.encode()[:room].decode(errors="ignore")
    return check_key(prefix + name)
