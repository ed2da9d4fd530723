"""Who is calling: bearer API keys for programs, a signed session cookie for browser pages.

Keys are configured as SHA-256 hashes and compared in constant time. The cookie names the
principal, an expiry and a fingerprint of the key it was minted with, signed with
HMAC-SHA256 under the configured secret. It carries nothing secret itself, and it stops
working when the principal is removed, when its key is rotated (the fingerprint no longer
matches) or when the cookie secret changes (unless the old secret is kept in
``previous_cookie_secrets``). Keys and cookies are checked against the principals in force
now (``LivePrincipals``: their file is re-read every ``reload_interval``), so a key and
every cookie minted with it stop working on every replica within that time of the key's
removal from the file. The service keeps no session state, so a logout (``DELETE
/v1/session``) removes the cookie from the browser but cannot revoke a copy of it: rotate
the key for that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from ._reload import LivePrincipals
from ._settings import PrincipalSettings, ServiceSettings

__all__ = ["SESSION_COOKIE", "Authenticator", "Principal"]

SESSION_COOKIE = "streamify_session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller."""

    name: str
    prefix: str
    max_object_size: int
    key_id: str = field(default="", repr=False)
    """A keyed fingerprint of the key this caller authenticated with (not the key's hash):
    the session cookie it gets carries it, and stops working when the key changes."""

    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class _Keys:
    """The principals in force, ready to authenticate against."""

    source: tuple[PrincipalSettings, ...]
    by_hash: list[tuple[bytes, Principal]]
    by_name: dict[str, tuple[Principal, str]]
    """Each principal and its key's SHA-256 (hex)."""


class Authenticator:
    """Turns a bearer token or a session cookie into a ``Principal`` (or ``None``), by
    the principals in force now."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._live = LivePrincipals(settings)
        # New cookies are signed with the first secret; the others still verify.
        self._secrets = [
            hashlib.sha256(b"streamify-session:" + secret.get_secret_value().encode()).digest()
            for secret in (settings.cookie_secret, *settings.previous_cookie_secrets)]
        self._keys = self._index(settings.principals)
        self.session_ttl = settings.session_ttl

    def _index(self, principals: tuple[PrincipalSettings, ...]) -> _Keys:
        by_hash = [
            (bytes.fromhex(p.key_sha256),
             Principal(name=p.name, prefix=p.prefix, max_object_size=p.max_object_size,
                       key_id=self._fingerprint(self._secrets[0], p.key_sha256)))
            for p in principals]
        by_name = {principal.name: (principal, p.key_sha256)
                   for (_, principal), p in zip(by_hash, principals, strict=True)}
        return _Keys(principals, by_hash, by_name)

    def _in_force(self) -> _Keys:
        principals = self._live.current()
        keys = self._keys
        if keys.source is not principals:
            keys = self._keys = self._index(principals)
        return keys

    def from_token(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode(errors="surrogatepass")).digest()
        found = None
        # Compare against every key, so the time taken does not say which one came close.
        for key_hash, principal in self._in_force().by_hash:
            if hmac.compare_digest(digest, key_hash):
                found = principal
        return found

    def session_cookie(self, principal: Principal, *, now: float | None = None) -> str:
        """A cookie value naming ``principal`` (as this authenticator gave it) and the key
        it authenticated with, until ``session_ttl`` seconds from now."""
        if not principal.key_id:
            raise ValueError("a session is opened only for a principal this authenticator "
                             "gave")
        expires = int((now if now is not None else time.time()) + self.session_ttl)
        payload = _b64(json.dumps({"p": principal.name, "exp": expires,
                                   "k": principal.key_id}).encode())
        return f"{payload}.{_sign(self._secrets[0], payload)}"

    def from_cookie(self, value: str, *, now: float | None = None) -> Principal | None:
        payload, _, signature = value.partition(".")
        secret = next((s for s in self._secrets if hmac.compare_digest(
            signature.encode(), _sign(s, payload).encode())), None) if payload else None
        if secret is None:
            return None
        try:
            claims = json.loads(_unb64(payload))
            name, expires, key = str(claims["p"]), float(claims["exp"]), str(claims["k"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        found = self._in_force().by_name.get(name)
        if found is None:
            return None  # the principal was removed
        principal, key_sha256 = found
        # Its key now, fingerprinted under the secret that signed the cookie.
        if not hmac.compare_digest(key.encode(),
                                   self._fingerprint(secret, key_sha256).encode()):
            return None
        return principal

    @staticmethod
    def _fingerprint(secret: bytes, key_sha256: str) -> str:
        """A keyed digest of a key's hash: a cookie minted with one key does not match
        after rotation, and the cookie does not reveal the hash."""
        return _sign(secret, "key:" + key_sha256)[:22]


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
