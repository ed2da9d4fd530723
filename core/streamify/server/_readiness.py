"""``Readiness``: whether this replica should be sent requests (``/readyz``).

Ready means: not draining (``_drain``), storage answers a HEAD of the bucket, and the
shared limits store (Redis, when ``redis_url`` is set) answers a PING. Each check runs
in a worker thread of its own (at most one at a time, so a hung storage holds one thread,
not one per probe), is given ``timeout`` seconds, and its answer is kept for ``ttl``
seconds: a load balancer polling every second costs storage at most one HEAD a second
per replica. What a failed check says is an error code or ``timeout``, never an address,
URL or credential.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import anyio
import anyio.to_thread
import botocore.exceptions
from anyio import CapacityLimiter
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .._s3control import S3ControlPlane
from ._drain import Drain

__all__ = ["OK", "CachedCheck", "Readiness", "router", "storage_check", "store_check"]

OK = "ok"

Check = Callable[[], str]
"""A blocking check: ``OK``, or a short reason it failed."""


def storage_check(control: S3ControlPlane, bucket: str) -> Check:
    """HEAD of ``bucket`` with the service's own S3 client."""

    def check() -> str:
        try:
            control.client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            return str(error.get("Code") or "error")
        except botocore.exceptions.BotoCoreError as exc:
            return type(exc).__name__
        return OK

    return check


def store_check(ping: Callable[[], bool]) -> Check:
    """The limits store's ``ping()``."""
    return lambda: OK if ping() else "unreachable"


class CachedCheck:
    """One check, run off the event loop, its answer kept for ``ttl`` seconds."""

    def __init__(self, check: Check, *, ttl: float, timeout: float) -> None:
        self.check = check
        self.ttl = ttl
        self.timeout = timeout
        self._answer = OK
        self._expires = -math.inf
        self._lock = anyio.Lock()
        self._thread = CapacityLimiter(1)

    async def answer(self) -> str:
        async with self._lock:
            if time.monotonic() < self._expires:
                return self._answer
            try:
                with anyio.fail_after(self.timeout):
                    answer = await anyio.to_thread.run_sync(
                        self.check, limiter=self._thread, abandon_on_cancel=True)
            except TimeoutError:
                answer = "timeout"
            except Exception as exc:  # a probe answers, whatever the check raised
                answer = type(exc).__name__
            self._answer, self._expires = answer, time.monotonic() + self.ttl
            return answer


class Readiness:
    """The checks ``/readyz`` runs, by name (``storage``, ``limits_store``)."""

    def __init__(self, drain: Drain, checks: dict[str, Check], *, ttl: float = 1.0,
                 timeout: float = 2.0) -> None:
        self.drain = drain
        self.checks = {name: CachedCheck(check, ttl=ttl, timeout=timeout)
                       for name, check in checks.items()}

    async def status(self) -> tuple[bool, dict[str, str]]:
        """Whether the replica is ready, and each check's answer (``ok`` or why not).

        A draining replica is unready whatever the rest says, and asks nothing of
        storage or the store.
        """
        if self.drain.draining:
            return False, {"drain": "draining"}
        answers = {"drain": OK}

        async def ask(name: str, check: CachedCheck) -> None:
            answers[name] = await check.answer()

        async with anyio.create_task_group() as group:  # at once: one timeout at most
            for name, check in self.checks.items():
                group.start_soon(ask, name, check)
        return all(answer == OK for answer in answers.values()), answers


router = APIRouter()


@router.get("/readyz", tags=["health"], responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when storage and the limits store answer and the replica is not
    draining; 503 otherwise, with each check's answer (``ok`` or why not). ``/healthz``
    only says the process is alive."""
    readiness: Readiness = request.app.state.readiness
    ready, checks = await readiness.status()
    return JSONResponse({"status": "ready" if ready else "unready", "checks": checks},
                        status_code=200 if ready else 503)
