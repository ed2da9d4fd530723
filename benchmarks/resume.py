"""Finishing an upload after a crash: Streamify beside boto3 (s3transfer) and s3fs.

For each tool, side by side in one run, with the same part size and concurrency: start the
upload in a fresh child process, SIGKILL it once about half the parts are listed by S3
(ListParts), then run the very same command again and let it finish. Measured:

- the part bytes the server had received from the killed attempt;
- the part bytes the rerun sent to finish, and that over the file size (1.00 means the
  rerun sent the whole file again), and its ratio to Streamify's;
- the rerun's wall time (the whole process: start, imports, upload, exit);
- whether the killed attempt left an orphaned multipart upload: an upload open after the
  kill that is still open once the rerun has finished (its parts are stored, and billed on
  AWS, until someone aborts it or a lifecycle rule does);
- the SHA-256 of the final object, read back from S3, against the file's.

The tools:

- ``streamify``: the real command, ``streamify upload --part-size P --concurrency C``, run
  twice with the same arguments and state directory;
- ``boto3``: ``S3Client.upload_file`` with ``TransferConfig(multipart_chunksize=P,
  max_concurrency=C)`` (s3transfer), run twice;
- ``s3fs``: ``S3FileSystem.put_file(chunksize=P, max_concurrency=C)``, run twice.

Bytes are counted on the wire: every tool talks to S3 through a proxy (the tests' own,
``tests/wireproxy.py``) that forwards bytes unchanged and counts them once handed to the
server. During the first attempt the proxy also slows everything going up to ``--throttle``
bytes per second, the same for all tools, so that the kill lands at about half for each;
the rerun is not slowed. At the kill the proxy freezes (the counts are then exactly what
the server holds or held in flight), the process is killed, and its connections are cut.

The endpoint is ``--endpoint``, else ``$S3_ENDPOINT_URL``, else a moto server started here
in its own process. Everything created is removed at the end, even on error: objects, open
uploads, the bucket, the file. ``--between`` runs a shell command after each tool's objects
are deleted (radosgw frees deleted data only when its garbage collector runs).

    python benchmarks/resume.py [--size 512MiB] [--part-size 8MiB] [--concurrency 4]
        [--throttle auto] [--endpoint URL] [--dir DIR] [--between CMD]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _shared import ALTERNATIVES, REGION, MiB, moto_server, upload_with, write_file

# The repository root, for the one wire proxy the tests and the benchmarks share.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOOLS = ("streamify", *ALTERNATIVES)
POLL = 0.05


@dataclass(frozen=True)
class Outcome:
    tool: str
    parts_total: int
    parts_at_kill: int
    """Parts ListParts showed when the kill was decided."""
    parts_after_kill: int
    """Parts the server held once the killed process's connections were cut."""
    first_bytes: int
    rerun_bytes: int
    rerun_bytes_up: int
    """Everything the rerun sent up: requests, headers and bodies."""
    rerun_seconds: float
    orphans: int
    orphan_bytes: int
    """Part bytes the orphaned uploads still hold."""
    sha256_ok: bool
    note: str


# ---------------------------------------------------------------------- the child side
# ---------------------------------------------------------------------- the parent side
class Bench:
    def __init__(self, args: argparse.Namespace, endpoint: str) -> None:
        from streamify._s3control import s3_client

        from tests.wireproxy import WireProxy

        self.args = args
        self.endpoint = endpoint
        self.client = s3_client(endpoint_url=endpoint, region=REGION)
        self.bucket = f"bench-resume-{uuid.uuid4().hex[:10]}"
        self.workdir = Path(tempfile.mkdtemp(prefix="streamify-resume-", dir=args.dir))
        self.source = self.workdir / "source.bin"
        self.proxy = WireProxy(endpoint)

    def command(self, tool: str, key: str) -> list[str]:
        a = self.args
        if tool == "streamify":
            return [sys.executable, "-m", "streamify", "upload", str(self.source),
                    f"s3://{self.bucket}/{key}", "--endpoint-url", self.proxy.url,
                    "--part-size", str(a.part_size), "--concurrency", str(a.concurrency),
                    "--json", "--no-progress", "--state-dir", str(self.workdir / "state")]
        return [sys.executable, os.path.abspath(__file__), "--child", tool, str(self.source),
                self.bucket, key, self.proxy.url, str(a.part_size), str(a.concurrency)]

    # -------------------------------------------------------------- S3 views (no proxy)
    def open_uploads(self, key: str) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        for _ in range(1000):
            page = self.client.list_multipart_uploads(**kwargs)
            ids += [u["UploadId"] for u in page.get("Uploads", []) if u["Key"] == key]
            if not page.get("IsTruncated"):
                break
            kwargs.update(KeyMarker=page["NextKeyMarker"],
                          UploadIdMarker=page["NextUploadIdMarker"])
        return ids

    def listed_parts(self, key: str, upload_id: str) -> dict[int, int]:
        parts: dict[int, int] = {}
        marker = 0
        for _ in range(10_000):
            page = self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                          PartNumberMarker=marker)
            parts.update({p["PartNumber"]: p["Size"] for p in page.get("Parts", [])})
            if not page.get("IsTruncated"):
                break
            marker = int(page["NextPartNumberMarker"])
        return parts

    def object_sha256(self, key: str) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(4 * MiB):
            digest.update(chunk)
        return digest.hexdigest()

    # -------------------------------------------------------------- one tool
    def run_tool(self, tool: str, file_sha256: str) -> Outcome:
        a = self.args
        key = f"{tool}/source.bin"
        command = self.command(tool, key)
        parts_total = -(-a.size // a.part_size)
        half = parts_total // 2
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env["AWS_DEFAULT_REGION"] = REGION

        # First attempt, slowed by the proxy; killed once half the parts are listed.
        self.proxy.rate = a.throttle
        start = self.proxy.counts()
        with tempfile.TemporaryFile("w+") as errors:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                       stderr=errors, start_new_session=True)
            try:
                parts_at_kill = self.watch(process, key, half, errors)
                killed = self.proxy.freeze()
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
                self.proxy.rate = None
                self.proxy.cut()
        first = killed - start
        time.sleep(0.5)  # let the server drop the bodies that were cut short
        left = self.open_uploads(key)
        parts_after = sum(len(self.listed_parts(key, uid)) for uid in left)

        # The rerun: the very same command, not slowed.
        before = self.proxy.counts()
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=a.timeout, check=False)
        seconds = time.monotonic() - started
        rerun = self.proxy.counts() - before
        if done.returncode != 0:
            raise RuntimeError(f"{tool} rerun failed (exit {done.returncode}): {done.stderr}")
        note = ""
        if tool == "streamify":
            result = json.loads(done.stdout.strip().splitlines()[-1])
            note = (f"resumed={result.get('resumed')} bytes_sent={result.get('bytes_sent')} "
                    f"bytes_resumed={result.get('bytes_resumed')}")
            if result.get("bytes_sent") != rerun.part_bytes:
                note += f" (wire: {rerun.part_bytes})"
        orphans = [uid for uid in self.open_uploads(key) if uid in left]
        orphan_bytes = sum(sum(self.listed_parts(key, uid).values()) for uid in orphans)
        sha_ok = self.object_sha256(key) == file_sha256
        return Outcome(tool, parts_total, parts_at_kill, parts_after, first.part_bytes,
                       rerun.part_bytes, rerun.bytes_up, seconds, len(orphans), orphan_bytes,
                       sha_ok, note)

    def watch(self, process: subprocess.Popen[bytes], key: str, half: int,
              errors: Any) -> int:
        """Poll ListParts until ``half`` parts are listed; return how many were."""
        deadline = time.monotonic() + self.args.kill_timeout
        upload_id = None
        while True:
            if process.poll() is not None:
                errors.seek(0)
                raise RuntimeError(f"the first attempt ended (exit {process.returncode}) "
                                   f"before the kill point: lower --throttle\n{errors.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kill point was not reached in "
                                   f"{self.args.kill_timeout:.0f} s")
            if upload_id is None:
                ids = self.open_uploads(key)
                upload_id = ids[0] if ids else None
            if upload_id is not None:
                parts = self.listed_parts(key, upload_id)
                if len(parts) >= half:
                    return len(parts)
            time.sleep(POLL)

    # -------------------------------------------------------------- all of it
    def run(self) -> list[Outcome]:
        a = self.args
        outcomes: list[Outcome] = []
        self.client.create_bucket(Bucket=self.bucket)
        try:
            print(f"writing {a.size / MiB:.0f} MiB to {self.source}", file=sys.stderr)
            write_file(self.source, a.size)
            file_sha256 = sha256_of(self.source)
            for tool in a.tools:
                print(f"{tool}: first attempt (throttled to {a.throttle / MiB:.1f} MiB/s), "
                      f"kill, rerun ...", file=sys.stderr)
                try:
                    outcome = self.run_tool(tool, file_sha256)
                finally:
                    self.cleanup()
                if outcome.note:
                    print(f"  {outcome.note}", file=sys.stderr)
                outcomes.append(outcome)
            if self.proxy.unparsed:
                print(f"warning: {self.proxy.unparsed} chunked request(s) not attributed",
                      file=sys.stderr)
        finally:
            with suppress(Exception):
                self.cleanup()
            with suppress(Exception):
                self.client.delete_bucket(Bucket=self.bucket)
            self.proxy.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return outcomes

    def cleanup(self) -> None:
        """Abort every open upload and delete every object, then run ``--between``."""
        for _ in range(100):
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            objects = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
            if not uploads and not objects:
                break
            for upload in uploads:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
            for item in objects:
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
        if self.args.between:
            subprocess.run(self.args.between, shell=True, check=True,  # noqa: S602
                           stdout=subprocess.DEVNULL, timeout=600)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def report(outcomes: list[Outcome], args: argparse.Namespace, endpoint: str) -> str:
    ours = next((o for o in outcomes if o.tool == "streamify"), outcomes[0])
    lines = [
        f"{args.size / MiB:.0f} MiB file, {args.concurrency} x {args.part_size / MiB:.0f} MiB "
        f"parts, first attempt slowed to {args.throttle / MiB:.1f} MiB/s and killed at half, "
        f"to {endpoint}; Python {platform.python_version()}, {os.cpu_count()} CPUs",
        "",
        "| tool      | parts listed at kill | first attempt sent | rerun sent | "
        "rerun / file | rerun sent / streamify | rerun time | time / streamify | "
        "orphaned uploads | SHA-256 |",
        "|-----------|---------------------:|-------------------:|-----------:|"
        "-------------:|-----------------------:|-----------:|-----------------:|"
        "------------------|---------|",
    ]
    for o in outcomes:
        orphan = f"{o.orphans} ({o.orphan_bytes / MiB:.0f} MiB)" if o.orphans else "none"
        ratio = o.rerun_bytes / ours.rerun_bytes if ours.rerun_bytes else float("nan")
        lines.append(
            f"| {o.tool:<9} | {f'{o.parts_at_kill} of {o.parts_total}':>20} | "
            f"{o.first_bytes / MiB:>14.1f} MiB | {o.rerun_bytes / MiB:>6.1f} MiB | "
            f"{o.rerun_bytes / args.size:>12.2f} | {ratio:>21.2f}x | "
            f"{o.rerun_seconds:>8.1f} s | {o.rerun_seconds / ours.rerun_seconds:>15.2f}x | "
            f"{orphan:<16} | {'match' if o.sha256_ok else 'DIFFERS':<7} |")
    lines.append("")
    lines.append("parts held after the kill (cut bodies dropped): " + ", ".join(
        f"{o.tool} {o.parts_after_kill}" for o in outcomes) + "; all bytes the rerun sent up "
        "(requests, headers, bodies): " + ", ".join(
        f"{o.tool} {o.rerun_bytes_up / MiB:.1f} MiB" for o in outcomes))
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, path, bucket, key, endpoint, part_size, concurrency = sys.argv[2:9]
        upload_with(tool, path, bucket, key, endpoint, int(part_size), int(concurrency))
        return
    from streamify import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default="512MiB")
    parser.add_argument("--part-size", type=parse_size, default="8MiB")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--throttle", default="auto",
                        help="bytes per second for the first attempts, e.g. 32MiB (default "
                             "auto: the file size / 20 s, so half is reached in about 10 s)")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        type=lambda text: [t for t in text.split(",") if t])
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"),
                        help="S3 endpoint (default $S3_ENDPOINT_URL, else a moto server)")
    parser.add_argument("--dir", default=None, help="where to write the file (default: tmp)")
    parser.add_argument("--between", default=None,
                        help="shell command to run after each tool's objects are deleted")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one rerun may take")
    args = parser.parse_args()
    args.throttle = (max(args.size / 20, MiB) if args.throttle == "auto"
                     else parse_size(args.throttle))
    args.kill_timeout = 3 * args.size / 2 / args.throttle + 60
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    if args.endpoint:
        outcomes = Bench(args, args.endpoint).run()
        endpoint = args.endpoint
    else:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
        with moto_server() as endpoint:
            outcomes = Bench(args, endpoint).run()
    print(report(outcomes, args, endpoint))


if __name__ == "__main__":
    main()
