"""Mapped bulk ingestion in Airflow: the same mapped DAG with Streamify's operator and with
the Amazon provider's ``LocalFilesystemToS3Operator``; wall time of each DAG run and ratio.

    source /tmp/rgw.env                          # or any S3; else a moto server
    flock /tmp/streamify-heavy.lock python benchmarks/airflow_mapped.py \\
        --between "radosgw-admin -c /tmp/rgw/cluster/ceph.conf gc process --include-all"

One Airflow deployment runs both DAGs, as ``tests/airflow/test_mapped_scale.py`` runs it:
API server, scheduler (CeleryExecutor) and DAG processor on loopback, Debian's redis-server
as broker, two ``airflow celery worker`` processes of ``--worker-concurrency`` tasks each,
and the pool ``streamify_mapped`` of ``--slots`` slots that every mapped task runs in.
``streamify_test_mapped`` (``tests/airflow/dags/``) maps ``StreamifyUploadOperator`` with
``.expand(source=...)`` over a folder's files; ``mapped_amazon`` (``benchmarks/dags/``)
maps ``LocalFilesystemToS3Operator`` with ``.expand_kwargs`` over the same files. Both use
one ``aws`` connection ``ingest`` with each tool's defaults otherwise (Streamify: 5 MiB
parts as the DAG says, 4 at a time; the provider: boto3's ``upload_file``, 8 MiB parts
from 8 MiB on, 10 threads). Rounds interleave the two DAGs; after each run every object is
counted and its bytes summed (they must match the folder), then deleted.

Files (``--files``, ``--big-every``): 500 files, of 1 MiB, except one in ten of 16 MiB
(multipart for both tools): 1,250 MiB in all. The wall time is the DAG run's, from its
start to its end in the metadata database (listing task included).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path

from _chart import grouped_bars
from _runs import (
    Run,
    between,
    delete_prefix,
    git_revision,
    load_runs,
    machine,
    save_run,
    stored,
)
from _shared import REGION, MiB, moto_server, write_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.airflow._celery import celery_airflow, start_worker
from tests.airflow._services import Airflow, wait_for

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DAGS = {"streamify": ("streamify_test_mapped",
                      ROOT / "tests" / "airflow" / "dags" / "streamify_test_mapped.py"),
        "amazon": ("mapped_amazon", ROOT / "benchmarks" / "dags" / "mapped_amazon.py")}
LABELS = {"streamify": "`StreamifyUploadOperator.partial(...).expand(source=...)`",
          "amazon": "`LocalFilesystemToS3Operator.partial(...).expand_kwargs(...)`"}
POOL = "streamify_mapped"  # the DAGs'


def write_files(folder: Path, count: int, big_every: int) -> int:
    """``count`` files of 1 MiB, one in ``big_every`` of 16 MiB; their total size."""
    folder.mkdir()
    total = 0
    for index in range(count):
        size = 16 * MiB if index % big_every == 0 else MiB
        write_file(folder / f"{index:04d}.bin", size)
        with open(folder / f"{index:04d}.bin", "r+b") as fh:  # no two files alike
            fh.write(index.to_bytes(8, "big"))
        total += size
    return total


def aws_connection(endpoint: str) -> str:
    """The ``aws`` connection both DAGs use: the standard chain's credentials."""
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise SystemExit("no AWS credentials: source /tmp/rgw.env or set AWS_ACCESS_KEY_ID")
    frozen = credentials.get_frozen_credentials()
    return json.dumps({"conn_type": "aws", "login": frozen.access_key,
                       "password": frozen.secret_key, "extra": {
                           "endpoint_url": endpoint, "region_name": REGION,
                           # radosgw rejects botocore's default trailing checksums
                           "config_kwargs": {"request_checksum_calculation": "when_required",
                                             "response_checksum_validation": "when_required"}}})


@contextmanager
def s3_endpoint(given: str | None) -> Iterator[str]:
    if given:
        yield given
    else:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        with moto_server() as endpoint:
            yield endpoint


def run_dag(airflow: Airflow, dag_id: str, folder: Path, destination: str,
            timeout: float) -> str:
    """Trigger ``dag_id`` over ``folder`` and wait for its end; its run id."""
    run_id = airflow.trigger(dag_id, {"folder": str(folder), "destination": destination})
    wait_for(f"{dag_id} to finish", partial(
        airflow.query, "select state from dag_run where run_id = ? and state in ('success', "
        "'failed')", run_id), airflow, timeout=timeout, every=1.0)
    return run_id


def run_seconds(airflow: Airflow, run_id: str) -> tuple[str, float, float]:
    """The run's final state, its wall seconds and the median seconds of an upload task."""
    [(state, start, end)] = airflow.query(
        "select state, start_date, end_date from dag_run where run_id = ?", run_id)
    tasks = airflow.query("select start_date, end_date from task_instance where run_id = ? "
                          "and task_id = 'upload'", run_id)
    task_seconds = statistics.median(
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in tasks)
    return state, (datetime.fromisoformat(end) - datetime.fromisoformat(start)
                   ).total_seconds(), task_seconds


def run_all(args: argparse.Namespace, runs_file: Path) -> list[str]:
    from streamify._s3control import s3_client

    notes = []
    with s3_endpoint(args.endpoint) as endpoint, \
            tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        s3 = s3_client(endpoint_url=endpoint, region=REGION)
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        folder = Path(tmp) / "incoming"
        total = write_files(folder, args.files, args.big_every)
        warm_up = Path(tmp) / "warm-up"
        write_files(warm_up, 4, args.big_every)
        case = f"{args.files} files, {total / MiB:,.0f} MiB"
        settings = {"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__PARALLELISM": "32",
                    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
                    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25"}
        try:
            with celery_airflow(Path(tmp) / "airflow", [path for _, path in DAGS.values()],
                                DAGS["amazon"][0], env=settings) as airflow:
                wait_for("both DAGs to be parsed", lambda: len(airflow.query(
                    "select dag_id from serialized_dag")) >= len(DAGS), airflow)
                airflow.post("pools", {"name": POOL, "slots": args.slots,
                                       "include_deferred": False})
                for name in ("alpha", "beta"):
                    start_worker(airflow, name, aws_connection(endpoint),
                                 args.worker_concurrency)
                # Unmeasured: the workers' start and each DAG's first run.
                for dag_id, _ in DAGS.values():
                    run_dag(airflow, dag_id, warm_up, f"s3://{bucket}/warm-up/", args.timeout)
                delete_prefix(s3, bucket, "warm-up/")
                for round_ in range(1, args.rounds + 1):
                    for contender in args.only.split(","):
                        dag_id, _ = DAGS[contender]
                        prefix = f"mapped/{contender}-{uuid.uuid4().hex[:8]}/"
                        run_id = run_dag(airflow, dag_id, folder, f"s3://{bucket}/{prefix}",
                                         args.timeout)
                        state, seconds, task_seconds = run_seconds(airflow, run_id)
                        found = stored(s3, bucket, prefix)
                        error = "" if state == "success" and found == (args.files, total) \
                            else f"run {state}, {found[0]} objects, {found[1]} bytes stored"
                        save_run(runs_file, Run("airflow_mapped", case, contender, round_,
                                                total, args.files, seconds, 0, 0, error))
                        notes.append(f"{contender} round {round_}: median upload task "
                                     f"{task_seconds:.2f} s")
                        print(f"{case} round {round_} {contender:10} {seconds:7.1f} s "
                              f"{args.files / seconds:5.2f} files/s, median task "
                              f"{task_seconds:.2f} s {error}", file=sys.stderr, flush=True)
                        delete_prefix(s3, bucket, prefix)
                        between(args.between)
        finally:
            delete_prefix(s3, bucket, "")
            s3.delete_bucket(Bucket=bucket)
    return notes


def report(runs: list[Run], header: str, notes: list[str]) -> str:
    good = [run for run in runs if not run.error]
    lines = [header, "", "| DAG | DAG run wall time | files/s | MiB/s | time / Streamify "
             "| rounds |", "|---|---:|---:|---:|---:|---:|"]
    seconds = {name: statistics.median(r.seconds for r in good if r.contender == name)
               for name in LABELS if any(r.contender == name for r in good)}
    for name, value in seconds.items():
        mine = [run for run in good if run.contender == name]
        ratio = f"{value / seconds['streamify']:.2f}x" if "streamify" in seconds else ""
        lines.append(f"| {LABELS[name]} | {value:.1f} s | {mine[0].files / value:.2f} | "
                     f"{mine[0].bytes / MiB / value:.1f} | {ratio} | {len(mine)} |")
    failed = [run for run in runs if run.error]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {run.contender}, round {run.round}: "
                                              f"{run.error}" for run in failed]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def chart(runs: list[Run], path: Path) -> None:
    good = [run for run in runs if not run.error]
    names = [name for name in LABELS if any(run.contender == name for run in good)]
    cases = list(dict.fromkeys(run.case for run in good))
    panels: list[tuple[str, dict[tuple[str, str], float]]] = [
        ("DAG run wall time, s (median)", {}), ("files/s", {})]
    for case in cases:
        for name in names:
            mine = [run for run in good if run.case == case and run.contender == name]
            if mine:
                seconds = statistics.median(run.seconds for run in mine)
                panels[0][1][case, name] = seconds
                panels[1][1][case, name] = mine[0].files / seconds
    grouped_bars(path, "Mapped bulk ingestion in Airflow (CeleryExecutor, two workers)",
                 cases, names, panels)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--big-every", type=int, default=10,
                        help="one file in this many is 16 MiB, the others 1 MiB")
    parser.add_argument("--slots", type=int, default=4, help="the pool's slots")
    parser.add_argument("--worker-concurrency", type=int, default=4,
                        help="tasks at a time per worker (two workers)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default=",".join(DAGS))
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    parser.add_argument("--between", default="",
                        help="command run after each run's objects are deleted")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--tmp", default=None, help="where the files are written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs_file = args.out / "airflow_mapped-runs.jsonl"
    runs_file.write_text("")
    header = (
        "# Mapped bulk ingestion in Airflow\n\n"
        f"Command: `{shlex.join(['python', 'benchmarks/airflow_mapped.py', *sys.argv[1:]])}`"
        f"\n\nMachine: {machine()}; S3 at {args.endpoint or 'a moto server'} (shares the "
        f"machine's CPUs)\n\nStarted {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit {git_revision()}\n\nCeleryExecutor, two workers of "
        f"{args.worker_concurrency} tasks, pool of {args.slots} slots; one in "
        f"{args.big_every} files of 16 MiB, the others 1 MiB.\n")
    notes = run_all(args, runs_file)
    markdown = report(load_runs(runs_file), header, notes)
    (args.out / "airflow_mapped.md").write_text(markdown)
    try:
        chart(load_runs(runs_file), args.out / "airflow_mapped.png")
    except ImportError:
        print("no chart: matplotlib is not installed (benchmarks/requirements.txt)",
              file=sys.stderr)
    print(markdown)


if __name__ == "__main__":
    main()
