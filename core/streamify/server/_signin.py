"""One-time sign-in links: ``streamify serve --local`` prints the page's address with a
code that opens one browser session, once.

The code rides in the URL's fragment (``/#signin=CODE``), which browsers never send to a
server, so it reaches no access log; the page posts it to ``POST /v1/session/link`` and gets
the same session cookie an API key would get. A second use is refused. The code lives in
the memory of the one process that printed it, which is why only the single-process local
mode offers it (the service itself stays stateless).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from typing import Annotated

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ._native import open_session
from ._problems import ServiceError

__all__ = ["SignInLink", "add_sign_in_link"]


class SignInLink:
    """A single-use code standing for ``token`` (the API key it signs in with)."""

    def __init__(self, token: str) -> None:
        self.code = secrets.token_urlsafe(24)
        self._token: str | None = token
        self._lock = threading.Lock()

    def url(self, base_url: str) -> str:
        """The page at ``base_url`` with the code in its fragment."""
        return f"{base_url.rstrip('/')}/#signin={self.code}"

    def redeem(self, code: str) -> str | None:
        """The API key, the first time the right code is given; ``None`` ever after."""
        with self._lock:
            token = self._token
            if token is None or not hmac.compare_digest(code.encode(), self.code.encode()):
                return None
            self._token = None
            return token


class _LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=128)]


def add_sign_in_link(app: FastAPI, link: SignInLink) -> None:
    """Answer ``POST /v1/session/link`` on ``app``: the session cookie for ``link``'s key,
    once."""

    @app.post("/v1/session/link", status_code=204, response_class=Response,
              include_in_schema=False)
    async def open_session_by_link(request: Request, body: _LinkRequest) -> Response:
        token = link.redeem(body.code)
        principal = (request.app.state.authenticator.from_token(token)
                     if token is not None else None)
        if principal is None:
            raise ServiceError(401, "unauthorized", "this sign-in link was used already or "
                               "is not the one printed: sign in with the API key instead")
        return await open_session(request, principal)
