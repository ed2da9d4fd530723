"""A radosgw of the suite's own, beside the shared one, that can be restarted under an upload.

``private_rgw(directory)`` builds a cluster with ``../shared/s3/rgw-up.sh`` (memstore, its
own directory and ports, about 6-20 s) and removes it with ``rgw-down.sh --wipe`` after.
``PrivateRgw.restart()`` SIGKILLs the radosgw daemon and starts it again; the mon and the
OSD, which holds every part in memory, stay up, so nothing S3 acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import urllib3

from tests.conftest import free_port

__all__ = ["SCRIPTS", "PrivateRgw", "RgwUnavailable", "private_rgw"]

SCRIPTS = Path(__file__).parents[2].parent / "shared" / "s3"


class RgwUnavailable(RuntimeError):
    """The private radosgw cannot be built here (the message says why)."""


@dataclass
class PrivateRgw:
    """A radosgw of its own: ``restart()`` SIGKILLs the daemon (the mon and the OSD, which
    holds every part, stay up) and starts it again with the same configuration."""

    directory: Path
    endpoint: str
    access_key: str = ""
    secret_key: str = ""
    restarts: int = 0

    @property
    def conf(self) -> Path:
        """The cluster's ceph.conf (for ``radosgw-admin -c``)."""
        return self.directory / "cluster" / "ceph.conf"

    def pid(self) -> int:
        return int((self.directory / "cluster" / "run" / "client.rgw.pid").read_text().strip())

    def restart(self, down: float = 2.0, timeout: float = 60.0) -> None:
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(down)
        subprocess.run(["radosgw", "-c", str(self.conf), "-n", "client.rgw"], check=True)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if http.request("GET", f"{self.endpoint}/").status == 200:
                    self.restarts += 1
                    return
            time.sleep(0.1)
        raise RuntimeError(f"radosgw did not answer on {self.endpoint} in {timeout} s")


@contextlib.contextmanager
def private_rgw(directory: Path) -> Iterator[PrivateRgw]:
    """A private radosgw cluster under ``directory``, wiped afterwards. Raises
    ``RgwUnavailable`` when the scripts are missing or the cluster does not start."""
    up, down = SCRIPTS / "rgw-up.sh", SCRIPTS / "rgw-down.sh"
    if not up.is_file():
        raise RgwUnavailable(f"{up} is missing (the shared/s3 scripts beside the repository "
                             "start a private radosgw)")
    env = {**os.environ, "RGW_DIR": str(directory), "RGW_PORT": str(free_port()),
           "MON_PORT": str(free_port()), "SKIP_APT": "1"}
    try:
        started = subprocess.run(["bash", str(up)], env=env, capture_output=True, text=True,
                                 timeout=180, check=False)
        if started.returncode != 0:
            raise RgwUnavailable(f"rgw-up.sh failed ({started.returncode}): "
                                 f"{started.stderr[-2000:]}")
        exported = {}
        for line in started.stdout.splitlines()[-3:]:
            name, _, value = line.removeprefix("export ").partition("=")
            exported[name] = shlex.split(value)[0]
        yield PrivateRgw(directory, exported["S3_ENDPOINT_URL"],
                         exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"])
    finally:
        subprocess.run(["bash", str(down), "--wipe"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)
