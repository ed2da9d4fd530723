"""The soak: many uploads of random sizes, through every front end, under a mix of faults,
every outcome counted.

Each upload (a *trial*) picks a front end (``_frontends.FRONT_ENDS``: the command, the
Python API, an fsspec ``open("wb")`` stream, the notebook ``Uploader``, the Airflow
operator through ``dag.test()``) from a deck shuffled by the seed, so every front end comes
up in every five uploads, and goes straight to S3 or through the API service at random.
About ``rate`` of its requests meet a **network** fault from the proxies (a cut mid-part,
503 SlowDown or 500 with ``Retry-After``, an answer held past the read timeout, an answer
cut short), and with probability ``fault_rate`` it also meets one fault of the other kinds,
dealt from a deck in turn:

- **process**: the uploading process SIGKILLed mid-upload (the front end in a child
  process), then rerun: a resume;
- **data**: the source changed mid-upload (one clear error; the user aborts as the error
  says and reruns on the new content), the upload aborted by someone else mid-upload, or,
  between two runs (the first one paused), a part overwritten behind its back, the resume
  state truncated, garbled or of an older format, the source's mtime touched;
- **storage restart**: the S3 server's radosgw daemon SIGKILLed and started again mid-upload
  (only on the soak's private radosgw, ``rgw``; on moto a restart loses every upload, so
  the kind is reported as not available);
- **api restart**: the API service SIGKILLed and started again mid-upload (the trial goes
  through the service).

Mid-upload faults fire once the proxy has seen a random 15-60 % of the file's part bytes;
such a trial is at least two parts long and held to about two seconds by ``bwlimit``. A
pair that cannot happen is reported with its reason (``NOT_APPLICABLE``), never dropped.

A trial that fails is rerun as a user would, at most a few times; it must end with the
object read back byte-identical (SHA-256) to its source as it is then, or with one clear
error and a state a rerun finishes. Checked per trial and for the run: zero corrupted
objects, zero silent truncations, bytes re-sent per fault at most ``concurrency x
part_size`` (counted on the wire; exempt: an upload whose parts someone else aborted, a
changed source aborted and sent again, a killed stream sent again from its first byte), no
part S3 held when an uploader was SIGKILLed or a between-runs fault struck sent again (S3's
ListParts at that moment against the proxy's bytes per part), no resume state left behind,
no multipart upload left open at the end.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import streamify
from streamify import (
    HttpControlPlane,
    S3ControlPlane,
    StateStore,
    StreamifyError,
    UploadConfig,
    Uploader,
    plan_parts,
)

from tests.faults._frontends import FRONT_ENDS, AirflowHome, Child, Job, Outcome, run_here
from tests.faults._stack import TOKEN, Stack, object_sha256, sha256_file
from tests.helpers import make_file
from tests.wireproxy import Match, part_puts

if TYPE_CHECKING:
    from tests.faults._rgw import PrivateRgw

__all__ = ["FAULT_KINDS", "FRONT_ENDS", "Ledger", "SoakSettings", "Trial", "run_soak"]

MiB = 1024 * 1024

NETWORK_S3 = ("cut mid-part", "reset before answer", "503 SlowDown", "500 InternalError",
              "stall past read timeout", "truncated part answer", "truncated S3 answer")
NETWORK_API = ("api 503 Retry-After", "api stall past timeout", "api truncated answer",
               "api reset")
FAULT_KINDS = ("network", "process", "data", "storage restart", "api restart")
SPECIAL = {
    "process": ("SIGKILL uploader",),
    "data": ("source changed mid-upload", "aborted by someone else", "part overwritten",
             "state truncated", "state garbled", "state older format", "source touched"),
    "storage restart": ("radosgw restarted",),
    "api restart": ("API service restarted",),
}
MID_UPLOAD = ("SIGKILL uploader", "source changed mid-upload", "aborted by someone else",
              "radosgw restarted", "API service restarted")
EXEMPT = ("aborted by someone else", "source changed mid-upload", "an fsspec stream killed")
"""Faults after which a rerun rightly sends again what S3 held (none of it may be kept)."""
_SPECIALS = frozenset(name for names in SPECIAL.values() for name in names)
_STREAM = ("a stream has no source file of its own and keeps no resume state: its object "
           "is the bytes written, and a rerun writes them again")
NOT_APPLICABLE = {
    ("fsspec", "source changed mid-upload"): _STREAM,
    ("fsspec", "source touched"): _STREAM,
    ("fsspec", "state truncated"): _STREAM,
    ("fsspec", "state garbled"): _STREAM,
    ("fsspec", "state older format"): _STREAM,
    ("fsspec", "part overwritten"): "a stream never resumes, so it never lists the parts S3 "
                                    "holds to find one overwritten",
    ("fsspec", "API service restarted"): "an fsspec stream goes straight to S3: through the "
                                         "API service, which must know an object's size "
                                         "before its upload starts, streamify:// refuses "
                                         "open('wb')",
}
NO_STORAGE_RESTART = ("not available on moto: the S3 server runs in the soak's own process "
                      "and keeps uploads in memory, so a restart loses them all (the "
                      "restart of a moto process is test_process.py's case); run the soak "
                      "on the private radosgw (--private-rgw) for it")


@dataclass(frozen=True, kw_only=True)
class SoakSettings:
    uploads: int = 50
    max_size: int = 24 * MiB
    rate: float = 0.10
    """Share of requests that meet a network fault."""
    fault_rate: float = 0.5
    """Share of uploads that also meet a process, data, storage or API service fault."""
    part_size: int = 5 * MiB
    concurrency: int = 3
    seed: int = 1
    read_timeout: float = 2.0
    """The client's read timeout (Python front ends); stalls last longer than it."""
    front_ends: tuple[str, ...] = FRONT_ENDS
    after_each: Callable[[], None] | None = None
    """Run after each upload once its object is deleted (radosgw's garbage collection)."""
    rgw: PrivateRgw | None = None
    """The private radosgw the stack runs on, for storage restarts (``None``: none)."""


@dataclass
class Trial:
    number: int
    key: str
    size: int
    mode: str
    front_end: str
    kind: str = ""
    """The non-network fault kind dealt to this upload (``""``: network faults only)."""
    special: str = ""
    """Which fault of that kind."""
    missed: bool = False
    """The upload ended before its mid-upload fault fired."""
    not_applicable: str = ""
    faults: list[str] = field(default_factory=list)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    user_aborts: int = 0
    retries: int = 0
    resumes: int = 0
    restarts: int = 0
    wire_bytes: int = 0
    held: dict[tuple[str, int], int] = field(default_factory=dict)
    """Parts S3 held (upload id, number) when a SIGKILL or a between-runs fault struck, with
    the bytes the proxy had seen of each then: none of them may cross the wire again."""
    verified: bool = False
    problem: str = ""

    @property
    def resent(self) -> int:
        return max(0, self.wire_bytes - self.size)

    @property
    def exempt(self) -> bool:
        killed_stream = self.front_end == "fsspec" and self.special == "SIGKILL uploader"
        return self.hit and (self.special in EXEMPT or killed_stream)

    @property
    def network_faults(self) -> int:
        return sum(kind not in _SPECIALS for kind in self.faults)

    @property
    def hit(self) -> bool:
        """The non-network fault dealt to it happened."""
        return bool(self.special) and not self.missed and not self.not_applicable


@dataclass
class Ledger:
    settings: SoakSettings
    trials: list[Trial] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    orphans: int = 0
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        found = [f"upload {t.number} ({t.key}, {t.size} B, {t.front_end}, {t.mode}): "
                 f"{t.problem}" for t in self.trials if t.problem]
        if self.orphans:
            found.append(f"{self.orphans} multipart upload(s) left open at the end")
        return found

    def by_kind(self) -> Counter[str]:
        """Faults that happened, by kind (network: every fault the proxies injected)."""
        counts: Counter[str] = Counter()
        for t in self.trials:
            counts["network"] += t.network_faults
            if t.hit:
                counts[t.kind] += 1
        return counts

    def row(self) -> dict[str, int]:
        """The per-seed table's numbers."""
        kinds = self.by_kind()
        return {"uploads": len(self.trials),
                **{kind: kinds[kind] for kind in FAULT_KINDS},
                "resent_largest": max((t.resent for t in self.trials), default=0),
                "resent_total": sum(t.resent for t in self.trials),
                "verified": sum(t.verified for t in self.trials),
                "orphans": self.orphans}

    def matrix(self) -> list[str]:
        """Front end x fault kind: faults that happened; n/a with its reason."""
        width = max(len(k) for k in FAULT_KINDS) + 1
        lines = [f"  {'front end':10s}" + "".join(f"{k:>{width}s}" for k in FAULT_KINDS)
                 + f"{'uploads':>9s}"]
        notes: dict[str, str] = {}
        for front_end in self.settings.front_ends:
            trials = [t for t in self.trials if t.front_end == front_end]
            cells = [str(sum(t.network_faults for t in trials))]
            for kind in FAULT_KINDS[1:]:
                hits = sum(t.hit and t.kind == kind for t in trials)
                reason = _kind_not_applicable(front_end, kind, self.settings)
                if reason and not hits:
                    mark = notes.setdefault(reason, "*" * (len(notes) + 1))
                    cells.append(f"n/a{mark}")
                else:
                    cells.append(str(hits))
            lines.append(f"  {front_end:10s}" + "".join(f"{c:>{width}s}" for c in cells)
                         + f"{len(trials):9d}")
        for reason, mark in notes.items():
            lines.append(f"  {mark} {reason}")
        partly: dict[str, list[str]] = {}
        for (front_end, special), reason in NOT_APPLICABLE.items():
            kind = next(k for k, names in SPECIAL.items() if special in names)
            if front_end in self.settings.front_ends and reason not in notes:
                partly.setdefault(reason, []).append(f"{front_end} x {special} ({kind})")
        lines += [f"  not applicable within a kind: {', '.join(pairs)}: {reason}"
                  for reason, pairs in partly.items()]
        dealt = sum(bool(t.not_applicable) for t in self.trials)
        lines.append(f"  uploads dealt a kind marked n/a (they met network faults only): {dealt}")
        return lines

    def summary(self) -> str:
        s = self.settings
        trials = self.trials
        by_mode = Counter(t.mode for t in trials)
        by_front = Counter(t.front_end for t in trials)
        errors = Counter(e.split(":", 1)[0] for t in trials for e in t.errors)
        bounded = [t for t in trials if not t.exempt]
        worst = max((t.resent // max(1, len(t.faults)) for t in bounded), default=0)
        row = self.row()
        lines = [
            f"fault soak: {len(trials)} uploads ({by_mode['direct']} direct, {by_mode['api']} "
            f"through the API service), sizes 0..{s.max_size // MiB} MiB, part size "
            f"{s.part_size // MiB} MiB, concurrency {s.concurrency}, network fault rate "
            f"{s.rate:.0%}, other fault rate {s.fault_rate:.0%}, seed {s.seed}, "
            f"storage {'private radosgw' if s.rgw else 'as given'}, {self.seconds:.0f} s",
            "front ends: " + ", ".join(f"{fe} {by_front[fe]}" for fe in s.front_ends),
            "faults by kind: " + ", ".join(f"{k} {row[k]}" for k in FAULT_KINDS),
            f"faults injected: {sum(self.injected.values())}",
            *(f"  {count:4d}  {kind}" for kind, count in sorted(self.injected.items())),
            f"mid-upload faults that found the upload already over: "
            f"{sum(t.missed for t in trials)}",
            "front end x fault kind (faults that happened):",
            *self.matrix(),
            f"uploads that met a fault: {sum(bool(t.faults) for t in trials)}",
            f"failed runs (one clear error, then rerun): {sum(len(t.errors) for t in trials)}",
            *(f"  {count:4d}  {name}" for name, count in sorted(errors.items())),
            f"aborts the user ran as an error said: {sum(t.user_aborts for t in trials)}",
            f"retries (part attempts, Python front ends): {sum(t.retries for t in trials)}",
            f"resumes (Python front ends): {sum(t.resumes for t in trials)}; restarts after "
            f"an abort: {sum(t.restarts for t in trials)}",
            f"bytes uploaded: {sum(t.size for t in trials)}; part bytes on the wire: "
            f"{sum(t.wire_bytes for t in trials)}; re-sent: {row['resent_total']} (largest "
            f"per upload {row['resent_largest']})",
            f"largest re-send per fault: {worst} B (bound {s.concurrency * s.part_size} B = "
            "concurrency x part size; exempt: " + ", ".join(EXEMPT) + ")",
            f"objects verified byte-identical (SHA-256 read back): "
            f"{row['verified']}/{len(trials)}",
            "corrupted objects: "
            f"{sum('corrupted' in t.problem for t in trials)}; silent truncations: "
            f"{sum('truncat' in t.problem for t in trials)}",
            f"orphaned multipart uploads at the end: {self.orphans}",
        ]
        problems = self.problems
        lines.append("result: " + ("PASS" if not problems else f"FAIL ({len(problems)})"))
        lines += [f"  {p}" for p in problems]
        return "\n".join(lines)


def _kind_not_applicable(front_end: str, kind: str, settings: SoakSettings) -> str:
    """Why ``kind`` cannot meet ``front_end`` here (``""``: it can)."""
    if kind == "storage restart" and settings.rgw is None:
        return NO_STORAGE_RESTART
    if all((front_end, special) in NOT_APPLICABLE for special in SPECIAL.get(kind, ())):
        return NOT_APPLICABLE[(front_end, SPECIAL[kind][0])]
    return ""


def table(ledgers: Sequence[Ledger]) -> str:
    """The per-seed table (Markdown)."""
    head = ("| seed | uploads | network | process | data | storage restart | API service "
            "restart | re-sent, largest (MiB) | re-sent, total (MiB) | objects verified | "
            "orphaned uploads |")
    lines = [head, "|" + "---:|" * 11]
    for ledger in ledgers:
        r = ledger.row()
        storage = str(r["storage restart"]) if ledger.settings.rgw else "n/a (moto)"
        lines.append(
            f"| {ledger.settings.seed} | {r['uploads']} | {r['network']} | {r['process']} | "
            f"{r['data']} | {storage} | {r['api restart']} | {r['resent_largest'] / MiB:.1f} | "
            f"{r['resent_total'] / MiB:.1f} | {r['verified']}/{r['uploads']} | "
            f"{r['orphans']} |")
    return "\n".join(lines)


def _api_calls(method: str, target: str) -> bool:
    """Calls on an existing upload (sign, list, complete); never the create call."""
    return target.startswith("/v1/uploads/")


def _s3_control(method: str, target: str) -> bool:
    return not part_puts(method, target)


class _Trigger:
    """Fires ``action`` from a thread once the S3 proxy has seen ``threshold`` part bytes
    more than ``before``; ``stop()`` ends the watch and waits for an action under way."""

    def __init__(self, stack: Stack, before: int, threshold: int,
                 action: Callable[[], None]) -> None:
        self.fired = False
        self._stop = threading.Event()

        def watch() -> None:
            while not self._stop.is_set():
                if stack.s3.counts().part_bytes - before >= threshold:
                    self.fired = True
                    action()
                    return
                time.sleep(0.005)

        self._thread = threading.Thread(target=watch, name="soak-trigger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _Runner:
    def __init__(self, stack: Stack, settings: SoakSettings, workdir: Path,
                 airflow: AirflowHome) -> None:
        self.stack = stack
        self.settings = settings
        self.workdir = workdir
        self.airflow = airflow
        self.rng = random.Random(settings.seed)
        self.tuning = {"read_timeout": settings.read_timeout, "connect_timeout": 2.0,
                       "backoff_base": 0.05, "backoff_max": 2.0, "max_attempts": 10}
        self.config = UploadConfig.from_options(part_size=settings.part_size,
                                                concurrency=settings.concurrency,
                                                **self.tuning)
        self.ledger = Ledger(settings)
        self._front_ends: list[str] = []
        self._kinds: list[str] = []

    def _deal(self, deck: list[str], cards: Sequence[str]) -> str:
        if not deck:
            deck += cards
            self.rng.shuffle(deck)
        return deck.pop()

    # ------------------------------------------------------------------ one upload
    def trial(self, number: int) -> Trial:
        rng = self.rng
        s = self.settings
        front_end = self._deal(self._front_ends, s.front_ends)
        kind = special = reason = ""
        if rng.random() < s.fault_rate:
            kind = self._deal(self._kinds, FAULT_KINDS[1:])
            reason = _kind_not_applicable(front_end, kind, s)
            if not reason:
                special = rng.choice([name for name in SPECIAL[kind]
                                      if (front_end, name) not in NOT_APPLICABLE])
        mode = rng.choice(("direct", "api"))
        if front_end == "fsspec":
            mode = "direct"  # see NOT_APPLICABLE
        elif kind == "api restart":
            mode = "api"
        roll = rng.random()
        if special in MID_UPLOAD:
            size = rng.randint(2 * s.part_size, max(2 * s.part_size, s.max_size))
        elif roll < 0.08:
            size = 0
        elif roll < 0.2:
            size = rng.randint(1, max(1, s.max_size // s.part_size)) * s.part_size
        else:
            size = rng.randint(1, s.max_size)
        trial = Trial(number, self.stack.key(f"soak/{number:04d}.bin"), size, mode, front_end,
                      kind=kind, special=special, not_applicable=reason)
        path = make_file(self.workdir / f"{number:04d}.bin", size, seed=number)
        state = self.workdir / f"state-{number:04d}"
        before = self.stack.s3.counts().part_bytes
        try:
            self._arm_network(trial)
            done = False
            if special in MID_UPLOAD:
                done = self._attempt(trial, path, state, fault=special)
            elif special:
                done = self._between_runs(special, trial, path, state)
            for attempt in range(4):
                if done:
                    break
                if attempt == 3:
                    self._disarm(trial)  # a user's last rerun on a network that recovered
                done = self._attempt(trial, path, state)
            self._disarm(trial)
            counts = self.stack.s3.counts()
            trial.wire_bytes = counts.part_bytes - before
            self._verify(trial, path, state, counts.parts)
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

    def _job(self, trial: Trial, path: Path, state: Path, bwlimit: int = 0) -> Job:
        return Job(front_end=trial.front_end, mode=trial.mode, source=str(path),
                   destination=f"s3://{self.stack.bucket}/{trial.key}", state=str(state),
                   s3_url=self.stack.s3.url, api_url=self.stack.api_url,
                   part_size=self.settings.part_size, concurrency=self.settings.concurrency,
                   bwlimit=bwlimit, tuning=self.tuning)

    def _attempt(self, trial: Trial, path: Path, state: Path, fault: str = "") -> bool:
        """One run of the upload through its front end, as a user would start it (with
        ``fault``, that fault strikes mid-upload); True once it completed."""
        trial.attempts += 1
        # About two seconds, so that a mid-upload fault finds the upload under way.
        job = self._job(trial, path, state, max(MiB, trial.size // 2) if fault else 0)
        child: Child | None = None
        if trial.front_end in ("cli", "airflow") or fault == "SIGKILL uploader":
            child = Child(job, self.airflow)
        trigger = None
        if fault:
            action = self._fault_action(fault, trial, path, child)
            if fault == "SIGKILL uploader" and trial.front_end != "fsspec":
                action = self._noting_held(trial, action)
            threshold = int(trial.size * self.rng.uniform(0.15, 0.6))
            trigger = _Trigger(self.stack, self.stack.s3.counts().part_bytes, threshold,
                               action)
        try:
            outcome = child.outcome() if child is not None else run_here(job)
        finally:
            if trigger is not None:
                trigger.stop()
        if trigger is not None:
            trial.missed = not trigger.fired
            if trigger.fired:
                trial.faults.append(fault)
                self.ledger.injected[fault] += 1
        self._record(trial, outcome, stopped=child is not None and child.killed)
        if child is not None and child.killed and trial.front_end == "fsspec":
            # A stream cannot be read again after its process died: the user aborts what
            # the dead one left open and writes the stream again from its first byte.
            self._user_abort(trial, state)
        elif "streamify abort" in outcome.error and fault == "source changed mid-upload":
            self._user_abort(trial, state)  # as the error says, to upload the new content
        return outcome.completed

    def _record(self, trial: Trial, outcome: Outcome, *, stopped: bool) -> None:
        """Count what a run did; a run that ended without completing, unless ``stopped``
        on purpose (killed, paused), must have said why in one line."""
        trial.retries += outcome.retries
        trial.resumes += outcome.resumes
        trial.restarts += outcome.restarts
        if outcome.completed or stopped:
            return
        message = outcome.error
        if "\n" in message or not message:
            trial.problem = f"an error that is not one clear line: {message!r}"
        trial.errors.append(message)

    def _fault_action(self, fault: str, trial: Trial, path: Path,
                      child: Child | None) -> Callable[[], None]:
        stack = self.stack
        if fault == "SIGKILL uploader":
            assert child is not None
            return child.kill
        if fault == "source changed mid-upload":
            offset = self.rng.randrange(trial.size - 64 * 1024)
            data = self.rng.randbytes(64 * 1024)

            def change() -> None:
                with open(path, "r+b") as fh:
                    fh.seek(offset)
                    fh.write(data)
            return change
        if fault == "aborted by someone else":
            def abort() -> None:
                for upload in stack.open_uploads():
                    if upload["Key"] == trial.key:
                        stack.client.abort_multipart_upload(
                            Bucket=stack.bucket, Key=trial.key, UploadId=upload["UploadId"])
            return abort
        if fault == "radosgw restarted":
            rgw = self.settings.rgw
            assert rgw is not None
            return lambda: rgw.restart(down=0.5)
        if fault == "API service restarted":
            service = stack.services[0]

            def restart() -> None:
                service.kill()
                service.start()
            return restart
        raise AssertionError(fault)

    def _noting_held(self, trial: Trial, action: Callable[[], None]) -> Callable[[], None]:
        def act() -> None:
            held = self._held(trial.key)
            action()
            wire = self.stack.s3.counts().parts
            trial.held = {part: wire.get(part, 0) for part in held}
        return act

    def _held(self, key: str) -> dict[tuple[str, int], int]:
        """The parts S3 holds in the open uploads to ``key``, asked of S3 itself."""
        stack = self.stack
        held: dict[tuple[str, int], int] = {}
        for upload in stack.open_uploads():
            if upload["Key"] != key:
                continue
            for page in stack.client.get_paginator("list_parts").paginate(
                    Bucket=stack.bucket, Key=key, UploadId=upload["UploadId"]):
                held.update({(upload["UploadId"], part["PartNumber"]): part["Size"]
                             for part in page.get("Parts", [])})
        return held

    def _user_abort(self, trial: Trial, state: Path) -> None:
        """``streamify abort DEST``, as the user runs it."""
        command = [sys.executable, "-m", "streamify", "abort",
                   f"s3://{self.stack.bucket}/{trial.key}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIFY_")}
        env["STREAMIFY_STATE_DIR"] = str(state)
        if trial.mode == "api":
            command += ["--api", self.stack.api_url]
            env["STREAMIFY_TOKEN"] = TOKEN
        else:
            command += ["--endpoint-url", self.stack.s3.url]
        trial.user_aborts += 1
        subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)

    # ------------------------------------------------------------------ between two runs
    def _core_run(self, trial: Trial, path: Path, state: Path, pause_after: int) -> bool:
        """A first run with the core's ``Uploader``, one part at a time, paused once
        ``pause_after`` parts are done; True if it completed before that."""
        trial.attempts += 1
        control = (HttpControlPlane(self.stack.api_url, token=TOKEN,
                                    timeout=self.settings.read_timeout)
                   if trial.mode == "api" else S3ControlPlane(endpoint_url=self.stack.s3.url))
        outcome = Outcome()
        paused = False
        try:
            with Uploader(path, f"s3://{self.stack.bucket}/{trial.key}", control=control,
                          config=self.config.replace(concurrency=1),
                          state=StateStore(state)) as uploader:
                done = [0]

                def watch(event: streamify.Event) -> None:
                    outcome.count(event)
                    if isinstance(event, streamify.PartDone):
                        done[0] += 1
                        if done[0] >= pause_after:
                            uploader.pause()

                uploader.subscribe(watch)
                status = uploader.run().status
                outcome.completed, paused = status == "completed", status == "paused"
        except StreamifyError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            control.close()
        self._record(trial, outcome, stopped=paused)
        return outcome.completed

    def _between_runs(self, kind: str, trial: Trial, path: Path, state: Path) -> bool:
        """A paused first run, then ``kind`` done to what it left; True if the first run
        completed (too small to stop mid-way: the fault found nothing to hit)."""
        stack = self.stack
        parts = plan_parts(trial.size, self.settings.part_size).count
        if self._core_run(trial, path, state, self.rng.randint(1, max(1, parts - 1))):
            trial.missed = True
            return True
        trial.faults.append(kind)
        self.ledger.injected[kind] += 1
        open_ids = [u["UploadId"] for u in stack.open_uploads() if u["Key"] == trial.key]
        overwritten: set[tuple[str, int]] = set()
        if kind == "part overwritten" and open_ids:
            listed = stack.client.list_parts(Bucket=stack.bucket, Key=trial.key,
                                             UploadId=open_ids[0]).get("Parts", [])
            if listed:
                victim = listed[0]
                overwritten.add((open_ids[0], victim["PartNumber"]))
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
        # The part overwritten behind its back is the one part held that goes again.
        wire = stack.s3.counts().parts
        trial.held = {part: wire.get(part, 0) for part in self._held(trial.key)
                      if part not in overwritten}
        return False

    # ------------------------------------------------------------------ the verdict
    def _verify(self, trial: Trial, path: Path, state: Path,
                wire: dict[tuple[str, int], int]) -> None:
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
        again = sorted(n for (upload_id, n), seen in trial.held.items()
                       if wire.get((upload_id, n), 0) > seen)
        bound = max(1, len(trial.faults)) * self.settings.concurrency * self.settings.part_size
        if again:
            trial.problem = (f"part(s) {again} that S3 held when {trial.special} struck "
                             "crossed the wire again")
        elif trial.resent > bound and not trial.exempt:
            trial.problem = (f"re-sent {trial.resent} bytes for {len(trial.faults)} fault(s), "
                             f"above {bound}")


def run_soak(stack: Stack, settings: SoakSettings, workdir: Path,
             report: Callable[[str], None] | None = None) -> Ledger:
    """Run ``settings.uploads`` trials on ``stack``; return the ledger (see ``summary()``)."""
    runner = _Runner(stack, settings, workdir, AirflowHome(workdir / "airflow"))
    started = time.monotonic()
    for number in range(settings.uploads):
        trial = runner.trial(number)
        runner.ledger.trials.append(trial)
        if report is not None:
            verdict = "verified" if trial.verified else "NOT verified"
            missed = f" (missed: {trial.special})" if trial.missed else ""
            report(f"{number:4d} {trial.front_end:8s} {trial.mode:6s} {trial.size:>11d} B  "
                   f"{verdict}  faults={trial.faults}{missed} "
                   f"runs={trial.attempts} re-sent={trial.resent}"
                   + (f"  PROBLEM: {trial.problem}" if trial.problem else "")
                   + "".join(f"\n       error: {error[:200]}" for error in trial.errors))
    runner.ledger.orphans = len(stack.open_uploads())
    runner.ledger.seconds = time.monotonic() - started
    return runner.ledger
