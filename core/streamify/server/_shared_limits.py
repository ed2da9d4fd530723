"""Per-principal limits held in Redis, so that every replica enforces one global limit.

``LimitsStore`` is the connection: short timeouts, and a record of whether the store is
reachable. ``SharedRateLimiter`` (``RateLimit``), ``SharedInFlight`` (``RequestsInFlight``)
and ``SharedLocks`` (``PrincipalLocks``) keep their state there, each update one atomic
Lua script or command. The scripts read the time from Redis (``TIME``), so the replicas'
clocks do not matter, and every key expires once idle. Keys are
``streamify:<bucket>:<limit>:<principal name>``: names only, never a key or secret.

- **Rate**: a hash per principal (tokens, as of when), refilled and taken in one script;
  it expires once it would be full again.
- **In flight**: a sorted set per principal of request tokens, each scored by when its
  lease ends (``IN_FLIGHT_LEASE``). Entering prunes ended leases, counts, and adds one
  under the cap in one script; leaving removes the token. A replica killed mid-request
  leaves its tokens behind only until their leases end, never for good; a request
  running longer than the lease stops counting then.
- **Open uploads**: S3 stays the source of truth for the count. ``SharedLocks`` holds a
  per-principal lock (``SET NX PX`` with a random token, released by a compare-and-delete
  script) around the listing and the creation, so two replicas cannot both see room for
  one more upload and both start one. The lock expires after ``LOCK_TTL`` if its holder
  dies.

When the store cannot be reached (or fails) a call says so within ``TIMEOUT``; from then
on calls fail at once without trying it, and a thread of the store's own tries it every
``RETRY_INTERVAL`` until it answers, so that a dead (or silent) store never holds up a
request, the event loop included, for more than the one call. The policy, so that
no upload in progress is lost while Redis is down: the rate limit and the in-flight cap
let requests through (fail open), and starting an upload is refused with 503
``limits-store-unreachable`` and ``Retry-After`` (fail closed), because the open-upload
cap could not be held. The outage is logged once as a warning, and its end once, on the
``streamify.server.limits`` logger; the store is used again as soon as it answers, with
no restart.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._limits import LocalLocks
from ._problems import ServiceError

__all__ = [
    "IN_FLIGHT_LEASE",
    "LIMITS_LOGGER",
    "LOCK_TTL",
    "LOCK_WAIT",
    "RETRY_INTERVAL",
    "TIMEOUT",
    "LimitsStore",
    "SharedInFlight",
    "SharedLocks",
    "SharedRateLimiter",
    "StoreUnreachable",
    "store_unreachable",
]

LIMITS_LOGGER = "streamify.server.limits"
_log = logging.getLogger(LIMITS_LOGGER)

TIMEOUT = 0.5
"""Seconds to connect to the store, and to wait for each answer."""
RETRY_INTERVAL = 1.0
"""Seconds between two tries of an unreachable store (by a thread of its own)."""
IN_FLIGHT_LEASE = 120.0
"""Seconds a request counts as in flight at most, should its replica never say it ended."""
LOCK_TTL = 10.0
"""Seconds a principal's creation lock is held at most, should its holder die."""
LOCK_WAIT = 10.0
"""Seconds a start of an upload waits for its principal's lock before it is refused."""
STORE_RETRY_AFTER = 5
"""``Retry-After`` of a start of an upload refused because the store is unreachable."""

_T = TypeVar("_T")

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1])
local at = tonumber(held[2])
if tokens == nil or at == nil then
  tokens = burst
elseif now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
end
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.max(1, math.ceil((cost - tokens) / rate))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return wait
"""

_ENTER = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class StoreUnreachable(Exception):
    """The limits store did not answer (or failed); nothing was counted."""


class LimitsStore:
    """The Redis that holds the limits, and whether it is reachable now.

    ``ping()`` is the cheap check a readiness probe makes: one PING, at most ``TIMEOUT``.
    """

    def __init__(self, url: str, *, namespace: str, timeout: float = TIMEOUT,
                 retry_interval: float = RETRY_INTERVAL) -> None:
        # One attempt per call: a dead store must cost a request ``timeout``, not a
        # client's rounds of retries. A pooled connection the store closed is replaced
        # when it is next taken from the pool, so a restarted store is used again at once.
        self._redis = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0))
        self.namespace = namespace
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._closed = threading.Event()

    def key(self, limit: str, who: str) -> str:
        """The key of ``who``'s ``limit``: principal names only, never a credential."""
        return f"{self.namespace}{limit}:{who}"

    def script(self, source: str) -> Callable[[list[str], list[Any]], Any]:
        """``source`` as a callable of (keys, args), loaded again after a store restart."""
        script = self._redis.register_script(source)
        return lambda keys, args: script(keys=keys, args=args)

    def call(self, action: Callable[[redis.Redis], _T]) -> _T:
        """``action`` on the store, or ``StoreUnreachable`` (at once while it is known to
        be down)."""
        if self._down_since is not None:
            raise StoreUnreachable("the limits store is unreachable")
        try:
            result = action(self._redis)
        except redis.RedisError as exc:
            self._failed(exc)
            raise StoreUnreachable("the limits store is unreachable") from exc
        self._answered()
        return result

    def ping(self) -> bool:
        """Whether the store answers a PING now (it is always tried)."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            self._failed(exc)
            return False
        self._answered()
        return True

    @property
    def reachable(self) -> bool:
        """Whether the last call reached the store."""
        return self._down_since is None

    def close(self) -> None:
        self._closed.set()
        self._redis.close()

    def _failed(self, exc: redis.RedisError) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
        if first:
            threading.Thread(target=self._try_again, name="streamify-limits-store",
                             daemon=True).start()
            # The error's class only: its message may name the store's address.
            _log.warning(json.dumps({
                "event": "limits-store-unreachable", "error": type(exc).__name__,
                "effect": "rate and in-flight limits not enforced; new uploads refused "
                          "(503) until the store answers"}, separators=(",", ":")))

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            _log.warning(json.dumps({
                "event": "limits-store-reachable",
                "outage_seconds": round(time.monotonic() - since, 1)},
                separators=(",", ":")))


    def _try_again(self) -> None:
        """Ping the store every ``retry_interval`` until it answers (or is closed)."""
        while not self._closed.wait(self._retry_interval) and self._down_since is not None:
            try:
                self._redis.ping()
            except redis.RedisError:
                continue
            self._answered()


class SharedRateLimiter:
    """``RateLimit`` in the store: one token bucket per principal for every replica.

    Fails open: while the store is unreachable every request passes.
    """

    def __init__(self, store: LimitsStore, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} must be positive and burst {burst} at least 1")
        self.rate = rate
        self.burst = burst
        self._store = store
        self._take = store.script(_TAKE)

    def take(self, who: str, cost: int = 1) -> int:
        """As ``RateLimiter.take``: a cost above ``burst`` counts as ``burst``."""
        cost = min(max(cost, 1), self.burst)
        key = self._store.key("rate", who)
        try:
            wait = self._store.call(lambda _: self._take([key], [self.rate, self.burst, cost]))
        except StoreUnreachable:
            return 0
        return int(wait)


class SharedInFlight:
    """``RequestsInFlight`` in the store: the cap holds across every replica.

    Each request entered here holds a token in the store; ``leave`` gives back one of the
    tokens this process holds for the principal (any one: they are alike). Fails open: a
    request entered while the store is unreachable holds nothing and gives nothing back.
    """

    def __init__(self, store: LimitsStore, *, cap: int,
                 lease: float = IN_FLIGHT_LEASE) -> None:
        if cap < 1:
            raise ValueError(f"cap {cap} must be at least 1")
        self.cap = cap
        self._lease_ms = max(1, round(lease * 1000))
        self._store = store
        self._enter = store.script(_ENTER)
        self._held: dict[str, list[str | None]] = {}
        self._lock = threading.Lock()

    def enter(self, who: str) -> bool:
        key = self._store.key("in-flight", who)
        token: str | None = secrets.token_hex(12)
        try:
            if not self._store.call(
                    lambda _: self._enter([key], [self.cap, self._lease_ms, token])):
                return False
        except StoreUnreachable:
            token = None
        with self._lock:
            self._held.setdefault(who, []).append(token)
        return True

    def leave(self, who: str) -> None:
        with self._lock:
            held = self._held.get(who)
            if not held:
                return
            token = held.pop()
            if not held:
                del self._held[who]
        if token is not None:
            key = self._store.key("in-flight", who)
            with suppress(StoreUnreachable):  # else its lease ends it
                self._store.call(lambda store: store.zrem(key, token))


class SharedLocks:
    """``PrincipalLocks`` in the store: one holder per principal across every replica.

    Threads of this process queue on a local lock first, so only one of them at a time
    asks the store. Fails closed: with the store unreachable the lock cannot be had, and
    the caller is answered 503 ``limits-store-unreachable``.
    """

    def __init__(self, store: LimitsStore, *, ttl: float = LOCK_TTL,
                 wait: float = LOCK_WAIT) -> None:
        self._store = store
        self._ttl_ms = max(1, round(ttl * 1000))
        self._wait = wait
        self._release = store.script(_RELEASE)
        self._local = LocalLocks()

    @contextmanager
    def hold(self, who: str) -> Iterator[None]:
        key = self._store.key("creating", who)
        token = secrets.token_hex(16)
        with self._local.hold(who):
            self._acquire(who, key, token)
            try:
                yield
            finally:
                with suppress(StoreUnreachable):  # else it expires
                    self._store.call(lambda _: self._release([key], [token]))

    def _acquire(self, who: str, key: str, token: str) -> None:
        deadline = time.monotonic() + self._wait
        pause = 0.005
        while True:
            try:
                if self._store.call(lambda store: store.set(key, token, nx=True,
                                                            px=self._ttl_ms)):
                    return
            except StoreUnreachable as exc:
                raise store_unreachable() from exc
            if time.monotonic() >= deadline:
                raise ServiceError(429, "create-busy", f"another start of an upload of "
                                   f"{who} held its turn for {self._wait:g} s; retry",
                                   headers={"Retry-After": "1"})
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def store_unreachable() -> ServiceError:
    """The answer to a start of an upload while the limits store is unreachable."""
    return ServiceError(
        503, "limits-store-unreachable", "the limits store (Redis) cannot be reached, so "
        "a new upload cannot be counted against your open-upload limit; uploads already "
        f"started can still be signed, listed and completed; retry in {STORE_RETRY_AFTER} s",
        headers={"Retry-After": str(STORE_RETRY_AFTER)})
