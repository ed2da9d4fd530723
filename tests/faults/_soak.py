"""The soak: many uploads of random sizes under a mix of faults, every outcome counted.

Each upload (a *trial*) goes straight to S3 or through the API service, at random. About
``rate`` of its part requests meet a network fault from the proxies (a cut mid-part, 503
SlowDown or 500 with ``Retry-After``, an answer held past the read timeout, an answer cut
short), and with probability ``rate`` it also meets one process or data fault (the
uploading process SIGKILLed at a random instant, the upload aborted by someone else, a
part overwritten behind its back, the resume state truncated, garbled or of an older
format, the source's mtime touched). A trial that fails is rerun as a user would, at most
a few times; it must end with the object read back byte-identical (SHA-256), or with one
clear error and a state a rerun finishes.

What is checked, per trial and for the run: zero corrupted objects, zero silent
truncations, bytes re-sent per fault at most ``concurrency x part_size`` (an upload aborted
by someone else is exempt: its parts are gone), no multipart upload left open at the end.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamify
from streamify import (
    ControlPlane,
    HttpControlPlane,
    S3ControlPlane,
    StateStore,
    StreamifyError,
    UploadConfig,
    Uploader,
    plan_parts,
)

from tests.faults._stack import TOKEN, Stack, object_sha256, sha256_file
from tests.helpers import make_file
from tests.wireproxy import Match, part_puts

__all__ = ["Ledger", "SoakSettings", "Trial", "run_soak"]

MiB = 1024 * 1024

NETWORK_S3 = ("cut mid-part", "reset before answer", "503 SlowDown", "500 InternalError",
              "stall past read timeout", "truncated part answer", "truncated S3 answer")
NETWORK_API = ("api 503 Retry-After", "api stall past timeout", "api truncated answer",
               "api reset")
PROCESS_DATA = ("SIGKILL uploader", "aborted by someone else", "part overwritten",
                "state truncated", "state garbled", "state older format", "source touched")


@dataclass(frozen=True, kw_only=True)
class SoakSettings:
    uploads: int = 50
    max_size: int = 24 * MiB
    rate: float = 0.10
    part_size: int = 5 * MiB
    concurrency: int = 3
    seed: int = 1
    read_timeout: float = 2.0
    """The client's read timeout; stalls last longer than it."""
    after_each: Callable[[], None] | None = None
    """Run after each upload once its object is deleted (radosgw's garbage collection)."""


@dataclass
class Trial:
    number: int
    key: str
    size: int
    mode: str
    faults: list[str] = field(default_factory=list)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    resumes: int = 0
    restarts: int = 0
    wire_bytes: int = 0
    verified: bool = False
    problem: str = ""

    @property
    def resent(self) -> int:
        return max(0, self.wire_bytes - self.size)


@dataclass
class Ledger:
    settings: SoakSettings
    trials: list[Trial] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    orphans: int = 0
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        found = [f"upload {t.number} ({t.key}, {t.size} B, {t.mode}): {t.problem}"
                 for t in self.trials if t.problem]
        if self.orphans:
            found.append(f"{self.orphans} multipart upload(s) left open at the end")
        return found

    def summary(self) -> str:
        s = self.settings
        trials = self.trials
        by_mode = Counter(t.mode for t in trials)
        errors = Counter(e.split(":", 1)[0] for t in trials for e in t.errors)
        worst = max((t.resent // max(1, len(t.faults)) for t in trials
                     if "aborted by someone else" not in t.faults), default=0)
        lines = [
            f"fault soak: {len(trials)} uploads ({by_mode['direct']} direct, {by_mode['api']} "
            f"through the API service), sizes 0..{s.max_size // MiB} MiB, part size "
            f"{s.part_size // MiB} MiB, concurrency {s.concurrency}, fault rate "
            f"{s.rate:.0%}, seed {s.seed}, {self.seconds:.0f} s",
            f"faults injected: {sum(self.injected.values())}",
            *(f"  {count:4d}  {kind}" for kind, count in sorted(self.injected.items())),
            f"uploads that met a fault: {sum(bool(t.faults) for t in trials)}",
            f"failed runs (one clear error, then rerun): {sum(len(t.errors) for t in trials)}",
            *(f"  {count:4d}  {name}" for name, count in sorted(errors.items())),
            f"retries (part attempts): {sum(t.retries for t in trials)}",
            f"resumes: {sum(t.resumes for t in trials)}; restarts after an abort: "
            f"{sum(t.restarts for t in trials)}",
            f"bytes uploaded: {sum(t.size for t in trials)}; part bytes on the wire: "
            f"{sum(t.wire_bytes for t in trials)}; re-sent: {sum(t.resent for t in trials)}",
            f"largest re-send per fault: {worst} B (bound {s.concurrency * s.part_size} B = "
            "concurrency x part size)",
            f"objects verified byte-identical (SHA-256 read back): "
            f"{sum(t.verified for t in trials)}/{len(trials)}",
            "corrupted objects: "
            f"{sum('corrupted' in t.problem for t in trials)}; silent truncations: "
            f"{sum('truncat' in t.problem for t in trials)}",
            f"orphaned multipart uploads at the end: {self.orphans}",
        ]
        problems = self.problems
        lines.append("result: " + ("PASS" if not problems else f"FAIL ({len(problems)})"))
        lines += [f"  {p}" for p in problems]
        return "\n".join(lines)


def _api_calls(method: str, target: str) -> bool:
    """Calls on an existing upload (sign, list, complete); never the create call."""
    return target.startswith("/v1/uploads/")


def _s3_control(method: str, target: str) -> bool:
    return not part_puts(method, target)


class _Runner:
    def __init__(self, stack: Stack, settings: SoakSettings, workdir: Path) -> None:
        self.stack = stack
        self.settings = settings
        self.workdir = workdir
        self.rng = random.Random(settings.seed)
        self.config = UploadConfig(part_size=settings.part_size,
                                   concurrency=settings.concurrency,
                                   read_timeout=settings.read_timeout, connect_timeout=2.0,
                                   backoff_base=0.05, backoff_max=1.0, max_attempts=6)
        self.ledger = Ledger(settings)

    # ------------------------------------------------------------------ one upload
    def trial(self, number: int) -> Trial:
        rng = self.rng
        s = self.settings
        roll = rng.random()
        if roll < 0.08:
            size = 0
        elif roll < 0.2:
            size = rng.randint(1, max(1, s.max_size // s.part_size)) * s.part_size
        else:
            size = rng.randint(1, s.max_size)
        mode = rng.choice(("direct", "api"))
        trial = Trial(number, self.stack.key(f"soak/{number:04d}.bin"), size, mode)
        path = make_file(self.workdir / f"{number:04d}.bin", size, seed=number)
        state = self.workdir / f"state-{number:04d}"
        before = self.stack.s3.counts().part_bytes
        try:
            self._arm_network(trial)
            special = (rng.choice(PROCESS_DATA) if rng.random() < s.rate else None)
            if special is not None:
                trial.faults.append(special)
                self.ledger.injected[special] += 1
                self._first_attempt_with(special, trial, path, state)
            for attempt in range(4):
                if attempt == 3:
                    self._disarm(trial)  # a user's last rerun on a network that recovered
                if self._attempt(trial, path, state):
                    break
            self._disarm(trial)
            trial.wire_bytes = self.stack.s3.counts().part_bytes - before
            self._verify(trial, path, state)
        finally:
            path.unlink(missing_ok=True)
            # Verified objects go at once: a long soak would otherwise fill the storage
            # (the test machines' radosgw keeps 8 GiB in memory).
            self.stack.client.delete_object(Bucket=self.stack.bucket, Key=trial.key)
            if s.after_each is not None:
                s.after_each()
        return trial

    def _arm_network(self, trial: Trial) -> None:
        rng = self.rng
        parts = plan_parts(trial.size, self.settings.part_size).count
        kinds = NETWORK_S3 + (NETWORK_API if trial.mode == "api" else ())
        hits = sum(rng.random() < self.settings.rate for _ in range(max(1, parts) + 3))
        for _ in range(hits):
            kind = rng.choice(kinds)
            s3, api = self.stack.s3, self.stack.api
            timeout = self.settings.read_timeout
            control: Match = _s3_control
            if kind == "cut mid-part":
                s3.cut_parts(after=rng.randint(1, self.settings.part_size // 2))
            elif kind == "reset before answer":
                s3.reset_requests()
            elif kind == "503 SlowDown":
                s3.fail_requests(503, "SlowDown", retry_after=1)
            elif kind == "500 InternalError":
                s3.fail_requests(500, "InternalError")
            elif kind == "stall past read timeout":
                s3.stall_responses(timeout + 1.5)
            elif kind == "truncated part answer":
                s3.truncate_responses(match=part_puts)
            elif kind == "truncated S3 answer":
                s3.truncate_responses(match=control)
            elif kind == "api 503 Retry-After":
                api.fail_requests(503, "SlowDown", retry_after=1, match=_api_calls)
            elif kind == "api stall past timeout":
                api.stall_responses(timeout + 1.5, match=_api_calls)
            elif kind == "api truncated answer":
                api.truncate_responses(match=lambda m, t: t.startswith("/v1/uploads"))
            elif kind == "api reset":
                api.reset_requests(match=_api_calls)

    def _disarm(self, trial: Trial) -> None:
        """Drop the faults no request met; count the ones that hit, as the trial's."""
        for proxy, prefix in ((self.stack.s3, ""), (self.stack.api, "api ")):
            proxy.disarm()
            for kind, count in proxy.faults.items():
                self.ledger.injected[prefix + kind] += count
                trial.faults += [prefix + kind] * count
            proxy.faults.clear()

    def _control(self, mode: str) -> ControlPlane:
        if mode == "api":
            return HttpControlPlane(self.stack.api_url, token=TOKEN,
                                    timeout=self.settings.read_timeout)
        return S3ControlPlane(endpoint_url=self.stack.s3.url)

    def _attempt(self, trial: Trial, path: Path, state: Path,
                 on_event: Callable[[Uploader, streamify.Event], None] | None = None,
                 config: UploadConfig | None = None) -> bool:
        """One run of the upload, as a user would start it; True once it completed."""
        trial.attempts += 1
        control = self._control(trial.mode)
        try:
            with Uploader(path, f"s3://{self.stack.bucket}/{trial.key}", control=control,
                          config=config or self.config, state=StateStore(state)) as uploader:

                def count(event: streamify.Event) -> None:
                    trial.retries += isinstance(event, streamify.Retrying)
                    trial.resumes += isinstance(event, streamify.Resumed)
                    trial.restarts += isinstance(event, streamify.Restarted)
                    if on_event is not None:
                        on_event(uploader, event)

                uploader.subscribe(count)
                result = uploader.run()
            return result.status == "completed"
        except StreamifyError as exc:
            message = str(exc)
            if "\n" in message or not message:
                trial.problem = f"an error that is not one clear line: {message!r}"
            trial.errors.append(f"{type(exc).__name__}: {message}")
            return False
        finally:
            control.close()

    # ------------------------------------------------------------------ process and data faults
    def _first_attempt_with(self, kind: str, trial: Trial, path: Path, state: Path) -> None:
        stack = self.stack
        if kind == "SIGKILL uploader":
            self._killed_cli(trial, path, state)
            return
        parts = plan_parts(trial.size, self.settings.part_size).count
        at = self.rng.randint(1, max(1, parts - 1))
        done = [0]

        def pause_at(uploader: Uploader, event: streamify.Event) -> None:
            if isinstance(event, streamify.PartDone):
                done[0] += 1
                if done[0] >= at:
                    uploader.pause()

        if kind == "aborted by someone else":
            def abort(uploader: Uploader, event: streamify.Event) -> None:
                if isinstance(event, streamify.Started):
                    stack.client.abort_multipart_upload(Bucket=stack.bucket, Key=trial.key,
                                                        UploadId=event.upload_id)
            self._attempt(trial, path, state, abort)
            return
        # One part at a time, so that the pause leaves parts to resume even in small files.
        if self._attempt(trial, path, state, pause_at, self.config.replace(concurrency=1)):
            return  # too small to stop mid-way: the fault found nothing to hit
        open_ids = [u["UploadId"] for u in stack.open_uploads() if u["Key"] == trial.key]
        if kind == "part overwritten" and open_ids:
            listed = stack.client.list_parts(Bucket=stack.bucket, Key=trial.key,
                                             UploadId=open_ids[0]).get("Parts", [])
            if listed:
                victim = listed[0]
                stack.client.upload_part(Bucket=stack.bucket, Key=trial.key,
                                         UploadId=open_ids[0], PartNumber=victim["PartNumber"],
                                         Body=os.urandom(victim["Size"]))
        elif kind.startswith("state"):
            for document in state.glob("*.json"):
                raw = document.read_bytes()
                if kind == "state truncated":
                    document.write_bytes(raw[: len(raw) // 2])
                elif kind == "state garbled":
                    document.write_bytes(b"\x00\xff" + raw[::-1])
                else:
                    older = json.loads(raw)
                    for name in ("version", "checksum", "api_url"):
                        older.pop(name, None)
                    document.write_text(json.dumps(older))
        elif kind == "source touched":
            stat = path.stat()
            os.utime(path, (stat.st_atime, stat.st_mtime + 60))

    def _killed_cli(self, trial: Trial, path: Path, state: Path) -> None:
        """The real CLI in its own process, SIGKILLed at a random instant of its run."""
        command = [sys.executable, "-m", "streamify", "upload", str(path),
                   f"s3://{self.stack.bucket}/{trial.key}", "--json", "--no-progress",
                   "--part-size", str(self.settings.part_size),
                   "--concurrency", str(self.settings.concurrency),
                   "--bwlimit", str(max(64 * 1024, trial.size // 2))]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env["STREAMIFY_STATE_DIR"] = str(state)
        if trial.mode == "api":
            command += ["--api", self.stack.api_url]
            env["STREAMIFY_TOKEN"] = TOKEN
        else:
            command += ["--endpoint-url", self.stack.s3.url]
        trial.attempts += 1
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(self.rng.uniform(0.5, 3.5))  # start-up (imports) takes about a second
        process.kill()
        process.wait(10)

    # ------------------------------------------------------------------ the verdict
    def _verify(self, trial: Trial, path: Path, state: Path) -> None:
        stack = self.stack
        left_open = [u for u in stack.open_uploads() if u["Key"] == trial.key]
        try:
            head = stack.client.head_object(Bucket=stack.bucket, Key=trial.key)
        except stack.client.exceptions.ClientError:
            head = None
        if head is None:
            trial.problem = trial.problem or (
                f"no object after {trial.attempts} runs; errors: {trial.errors}"
                + ("" if left_open else "; and no open upload to resume"))
            return
        if head["ContentLength"] != trial.size:
            trial.problem = (f"silent truncation: object has {head['ContentLength']} bytes, "
                             f"source {trial.size}")
            return
        if object_sha256(stack.client, stack.bucket, trial.key) != sha256_file(path):
            trial.problem = "corrupted object: SHA-256 read back differs from the source"
            return
        trial.verified = True
        if left_open:
            trial.problem = f"{len(left_open)} upload(s) left open beside the object"
        elif any(state.glob("*.json")):
            trial.problem = "a resume state was left behind for a completed upload"
        bound = max(1, len(trial.faults)) * self.settings.concurrency * self.settings.part_size
        if trial.resent > bound and "aborted by someone else" not in trial.faults:
            trial.problem = (f"re-sent {trial.resent} bytes for {len(trial.faults)} fault(s), "
                             f"above {bound}")


def run_soak(stack: Stack, settings: SoakSettings, workdir: Path,
             report: Callable[[str], None] | None = None) -> Ledger:
    """Run ``settings.uploads`` trials on ``stack``; return the ledger (see ``summary()``)."""
    runner = _Runner(stack, settings, workdir)
    started = time.monotonic()
    for number in range(settings.uploads):
        trial = runner.trial(number)
        runner.ledger.trials.append(trial)
        if report is not None:
            verdict = "verified" if trial.verified else "NOT verified"
            report(f"{number:4d} {trial.mode:6s} {trial.size:>11d} B  {verdict}  "
                   f"faults={trial.faults} runs={trial.attempts}"
                   + (f"  PROBLEM: {trial.problem}" if trial.problem else ""))
    runner.ledger.orphans = len(stack.open_uploads())
    runner.ledger.seconds = time.monotonic() - started
    return runner.ledger
