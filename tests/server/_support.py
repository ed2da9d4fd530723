"""Helpers for the service tests: sending part bytes to presigned URLs like a client does."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import httpx

MiB = 1024 * 1024
PROBLEM = "urn:streamify:problem:"


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """PUT ``body`` straight to storage (moto hangs on a PUT without Content-Type)."""
    sent = {"Content-Type": "application/octet-stream", **(headers or {})}
    return httpx.put(url, content=body, headers=sent, timeout=60)


def post_form(url: str, fields: Mapping[str, str], body: bytes) -> httpx.Response:
    """An S3 form upload (presigned POST): the fields, then the file, as Uppy sends it."""
    return httpx.post(url, data=dict(fields), files={"file": ("upload", body)}, timeout=60)


def assert_problem(response: httpx.Response, status: int,
                   kind: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (and type ``kind``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(response.text)
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == status
    assert problem["detail"]
    if kind is not None:
        assert problem["type"] == PROBLEM + kind, problem
    return problem


def assert_companion_error(response: httpx.Response, status: int) -> str:
    """``response`` is a Companion-style error: ``{"error": message}`` with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    message: str = body["error"]
    return message
