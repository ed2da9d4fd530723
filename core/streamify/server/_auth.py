"""Who is calling: bearer API keys for programs, a signed session cookie for browser pages.

Keys are configured as SHA-256 hashes and compared in constant time. The cookie names the
principal, an expiry and a fingerprint of the key it was minted with, signed with
HMAC-SHA256 under the configured secret. It carries nothing secret itself, and it stops
working when the principal is removed, when its key is rotated (the fingerprint no longer
matches) or when the cookie secret changes. The service keeps no session state, so a
logout (``DELETE /v1/session``) removes the cookie from the browser but cannot revoke a
copy of it: rotate the key for that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from ._settings import ServiceSettings

__all__ = ["SESSION_COOKIE", "Authenticator", "Principal"]

SESSION_COOKIE = "streamify_session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller."""

    name: str
    prefix: str
    max_object_size: int

    def owns(self, key: str) -> bool:
        return key.startswith(self.prefix)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Turns a bearer token or a session cookie into a ``Principal`` (or ``None``)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._by_hash = [
            (bytes.fromhex(p.key_sha256),
             Principal(name=p.name, prefix=p.prefix, max_object_size=p.max_object_size))
            for p in settings.principals]
        self._by_name = {principal.name: principal for _, principal in self._by_hash}
        self._secret = hashlib.sha256(
            b"streamify-session:" + settings.cookie_secret.get_secret_value().encode()).digest()
        # A keyed digest of each principal's key hash: a cookie minted with one key does
        # not match after rotation, and the cookie does not reveal the hash.
        self._fingerprints = {
            p.name: self._sign("key:" + p.key_sha256)[:22] for p in settings.principals}
        self.session_ttl = settings.session_ttl

    def from_token(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode(errors="surrogatepass")).digest()
        found = None
        # Compare against every key, so the time taken does not say which one came close.
        for key_hash, principal in self._by_hash:
            if hmac.compare_digest(digest, key_hash):
                found = principal
        return found

    def session_cookie(self, principal: Principal, *, now: float | None = None) -> str:
        """A cookie value naming ``principal`` until ``session_ttl`` seconds from now."""
        expires = int((now if now is not None else time.time()) + self.session_ttl)
        payload = _b64(json.dumps({"p": principal.name, "exp": expires,
                                   "k": self._fingerprints[principal.name]}).encode())
        return f"{payload}.{self._sign(payload)}"

    def from_cookie(self, value: str, *, now: float | None = None) -> Principal | None:
        payload, _, signature = value.partition(".")
        if not payload or not hmac.compare_digest(signature.encode(),
                                                  self._sign(payload).encode()):
            return None
        try:
            claims = json.loads(_unb64(payload))
            name, expires, key = str(claims["p"]), float(claims["exp"]), str(claims["k"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        fingerprint = self._fingerprints.get(name)
        if fingerprint is None or not hmac.compare_digest(key.encode(), fingerprint.encode()):
            return None
        return self._by_name.get(name)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())
