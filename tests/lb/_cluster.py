"""The service as deployed, on loopback: N replicas (``streamify serve`` processes) behind
HAProxy (Debian), limits shared through one Redis, one S3 for all.

HAProxy's settings are those README.md's deployment section gives: health checks on
``/readyz``, retries on connection failure and on an empty or 502/503 answer with
``option redispatch`` (another replica takes the retry), and no cutting of draining
sessions (no ``on-marked-down shutdown-sessions``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamify.server import hash_api_key

from tests.conftest import free_port

HAPROXY = "/usr/sbin/haproxy"


def require_haproxy() -> None:
    if shutil.which("haproxy") is None and not Path(HAPROXY).exists():
        pytest.skip("load-balancer tier skipped: Debian haproxy is not installed "
                    "(apt-get install haproxy redis-server)")


def wait_until_answers(url: str, *, timeout: float = 30.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == status:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer {status} within {timeout} s")
        time.sleep(0.1)


@dataclass
class Replica:
    """One ``streamify serve`` process on its own port, reading the shared config file."""

    name: str
    port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)
    """Exit codes of the processes this replica ran, in order."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, config: Path | None = None) -> None:
        self.config = config or self.config
        env = {**os.environ, "STREAMIFY_DRAIN_DELAY": "1", "STREAMIFY_DRAIN_DEADLINE": "20"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamify", "serve", "--port", str(self.port),
                 "--config", str(self.config)], stdout=log, stderr=log, env=env,
                start_new_session=True)
        wait_until_answers(f"{self.url}/healthz")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, and the exit code once it has drained."""
        return self._stop(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._stop(signal.SIGKILL, 10.0)

    def _stop(self, sig: signal.Signals, timeout: float) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.exits.append(code)
        self.process = None
        return code

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def haproxy_config(port: int, replicas: list[Replica], stats_port: int,
                   health: str = "/readyz") -> str:
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
    return f"""\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 10s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout 502 503
    option forwardfor

frontend api
    bind 127.0.0.1:{port}
    http-request deny if {{ path_beg /metrics }}
    default_backend replicas

frontend stats
    bind 127.0.0.1:{stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats

backend replicas
    balance roundrobin
    option httpchk GET {health}
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
{servers}
"""


class Cluster:
    """Replicas, HAProxy in front of them; the caller brings S3 and Redis."""

    def __init__(self, root: Path, settings: dict[str, Any], replicas: int = 3) -> None:
        require_haproxy()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.settings = dict(settings)
        self.config = root / "streamify.json"
        self.write_config()
        self.replicas = [Replica(f"r{i + 1}", free_port(), self.config,
                                 root / f"r{i + 1}.log") for i in range(replicas)]
        self.port, self.stats_port = free_port(), free_port()
        self.haproxy: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, path: Path | None = None, **changes: Any) -> Path:
        """Write the settings (with ``changes``) to ``path``, the shared file by default,
        atomically (a replica reading it never sees half a file)."""
        path = path or self.config
        self.settings.update(changes)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.settings))
        partial.replace(path)
        return path

    def start(self) -> Cluster:
        for replica in self.replicas:
            replica.start()
        config = self.root / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.replicas, self.stats_port))
        with (self.root / "haproxy.log").open("ab") as log:
            self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)],
                                            stdout=log, stderr=log, start_new_session=True)
        self.wait_for_up(len(self.replicas))
        return self

    def _servers(self) -> list[list[str]]:
        """HAProxy's CSV statistics rows of the replicas (``pxname,svname,...``)."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        rows = [line.split(",") for line in text.splitlines() if line.startswith("replicas,")]
        return [row for row in rows if row[1] not in ("FRONTEND", "BACKEND")]

    def servers_up(self) -> int:
        """Replicas HAProxy sends requests to (its health checks pass)."""
        return sum(1 for row in self._servers() if row[17] == "UP")

    def served(self) -> dict[str, int]:
        """Requests each replica was given by HAProxy (its ``stot`` column)."""
        return {row[1]: int(row[7]) for row in self._servers()}

    def wait_for_up(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.servers_up() == count:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy did not see {count} replicas up within "
                                     f"{timeout} s")
            time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(r.log.read_text(errors="replace") for r in self.replicas
                         if r.log.exists())

    def close(self) -> None:
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        for replica in self.replicas:
            replica.close()


def principal(name: str, token: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "key_sha256": hash_api_key(token), "prefix": f"{name}/", **extra}
