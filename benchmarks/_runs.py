"""Measuring one upload in a child process of its own, and keeping every run on disk.

A benchmark appends each measured run as one JSON line as soon as it has it, so a run cut
short (a server that stops answering, a deadline) keeps what it measured, and the report
is rebuilt from that file alone (``--report FILE``).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _procstat import processes

__all__ = ["ChildFailed", "Run", "between", "delete_prefix", "git_revision", "load_runs",
           "machine", "measure", "median_of", "past", "reason", "save_run", "server_cpu",
           "stored", "versions"]

SERVER_PROCESSES = ("radosgw", "ceph-osd", "ceph-mon")


@dataclass(frozen=True)
class Run:
    """One measured upload (or a failed attempt: ``error`` says why)."""

    bench: str
    case: str
    contender: str
    round: int
    bytes: int
    files: int
    seconds: float
    cpu: float
    peak_rss: int
    error: str = ""
    held: int = 0
    """The most part bodies the command held at once (``_held.py``; 0: not counted)."""
    server_cpu: float = 0.0
    """CPU seconds the S3 server's processes on this machine spent meanwhile (0: none)."""


class ChildFailed(RuntimeError):
    """The child process exited non-zero; the message ends with its last stderr lines."""


# A bare interpreter that starts the measured command and reports its wait4 figures. The
# measured command must not be forked from this (large) process: Linux carries a process's
# peak RSS across exec, so a child of a 100 MiB parent reports at least 100 MiB whatever it
# uses. Forked from this small launcher (no threads), its floor is the launcher's ~10 MiB.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
      usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""


def measure(argv: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 900) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS bytes of one command.

    The command's stderr goes to a file, not a pipe: a chatty child (rclone) would
    otherwise block on a full pipe that nobody reads until it exits. A command still
    running after ``timeout`` seconds is killed (its whole process group) and reported as
    failed.
    """
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, *argv],
                                   stdout=subprocess.PIPE, stderr=errors, env=env,
                                   start_new_session=True, text=True)
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            out = ""
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-1500:]
        fields = out.split()
        if len(fields) != 4 or fields[3] != "0":
            why = (f"exit {fields[3]}" if len(fields) == 4
                   else f"killed after {timeout:.0f} s" if process.returncode else "no result")
            raise ChildFailed(f"{shlex.join(argv[:4])}... {why}: {tail}")
    return float(fields[0]), float(fields[1]), int(fields[2])


def server_cpu() -> float:
    """CPU seconds (user + system) used so far by the S3 server's processes on this
    machine (radosgw and its Ceph daemons), 0 where there are none: it shares the CPUs
    with the client measured, so what it takes is what the client cannot have."""
    # Only the cluster the benchmark talks to: the one under $RGW_DIR (rgw-up.sh's).
    cluster = os.environ.get("RGW_DIR", "/tmp/rgw").rstrip("/") + "/"
    return sum(process.cpu for process in processes()
               if process.name in SERVER_PROCESSES
               and cluster in _cmdline(Path(f"/proc/{process.pid}")))


def _cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def between(command: str) -> None:
    """Run the ``--between`` command (radosgw's garbage collector) after each upload."""
    if command:
        subprocess.run(shlex.split(command), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    """Delete every object under ``prefix`` and abort its open multipart uploads."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def stored(s3: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under ``prefix``."""
    count = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            total += item["Size"]
    return count, total


def reason(error: str) -> str:
    """A failed run's cause in one line: how the child ended and its last line of stderr."""
    how = error.split(": ", 1)[0].rsplit("... ", 1)[-1]
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return f"{how}: {lines[-1]}" if len(lines) > 1 else error.strip()


def save_run(path: Path, run: Run) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(asdict(run)) + "\n")


def load_runs(path: Path) -> list[Run]:
    return [Run(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def median_of(runs: Iterable[Run], field: str) -> float:
    return float(statistics.median(getattr(run, field) for run in runs))


def git_revision() -> str:
    """The commit measured, and whether the core had uncommitted changes (``run.sh`` says
    which copy of the core its children import, in ``BENCH_CORE``)."""
    if os.environ.get("BENCH_CORE"):
        return os.environ["BENCH_CORE"]
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "core"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return (f"{head} (uncommitted changes in {', '.join(changed)})" if changed else head)


def machine() -> str:
    """One line naming the machine a result comes from."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({model}), {memory:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def versions() -> str:
    """The versions of the contenders' libraries and tools, for a result's header."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("streamify", "boto3", "s3transfer", "awscrt", "s3fs", "obstore"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    try:
        rclone = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                check=True).stdout.split("\n", 1)[0]
        found.append(rclone.replace(" v", " "))
    except (OSError, subprocess.CalledProcessError):
        found.append("rclone (not installed)")
    return ", ".join(found)


def past(stop_at: str) -> bool:
    """Whether the UTC clock is past ``stop_at`` ("HH:MM", today; "" never)."""
    if not stop_at:
        return False
    hours, minutes = (int(part) for part in stop_at.split(":"))
    now = time.gmtime()
    return (now.tm_hour, now.tm_min) >= (hours, minutes)
