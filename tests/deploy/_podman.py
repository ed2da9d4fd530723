"""Running the service's image with podman, as production would: read-only root, its own
user, settings from ``STREAMIFY_*`` variables and a mounted secrets file."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SECRETS_PATH = "/run/secrets/streamify.toml"


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


@dataclass
class Container:
    name: str

    def inspect(self) -> dict[str, Any]:
        done = podman("container", "inspect", self.name)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)[0]
        return data

    def logs(self) -> str:
        done = podman("logs", self.name)
        return done.stdout + done.stderr

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def wait(self, timeout: float = 60) -> int:
        """The exit code, once the container has stopped."""
        done = podman("wait", self.name, timeout=timeout)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())

    def wait_healthy(self, url: str, timeout: float = 60) -> None:
        """Until ``url`` answers 200 from the host; fails with the logs if the container
        stops first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self.running():
                raise AssertionError(f"the container stopped:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer in {timeout} s:\n{self.logs()}")
            time.sleep(0.2)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name)


def run_service(image: str, *, env: dict[str, str], secrets: Path | None,
                args: Sequence[str] = (), inherit_env: Sequence[str] = ()) -> Container:
    """``podman run -d`` the image read-only on the host's network. ``inherit_env`` names
    variables passed from this process (credentials: never on a command line)."""
    name = f"streamify-test-{uuid.uuid4().hex[:10]}"
    command = ["run", "--detach", "--name", name, "--read-only", "--network=host"]
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    for key in inherit_env:
        command += ["--env", key]
    if secrets is not None:
        command += ["--volume", f"{secrets}:{SECRETS_PATH}:ro"]
    done = podman(*command, image, *args)
    container = Container(name)
    if done.returncode != 0:
        container.remove()
        raise AssertionError(f"podman run failed: {done.stderr}")
    return container
