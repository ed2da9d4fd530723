"""Many files to one prefix: ``streamify upload DIR s3://bucket/prefix/`` beside boto3 with
a thread pool and ``rclone copy``; files per second and MiB/s, medians of the rounds.

    bash benchmarks/run.sh                      # installs, brings radosgw up, runs it all
    source /tmp/rgw.env                         # or by hand, against a running S3
    flock /tmp/streamify-heavy.lock python benchmarks/many_files.py \\
        --between "radosgw-admin -c /tmp/rgw/cluster/ceph.conf gc process --include-all"

Sets (``--sets``): a directory of 10,000 files of 100 KiB, one of 1,000 files of 1 MiB and
one of 50 files of 64 MiB. Each command uploads the whole directory in a child process of
its own (CPU and peak RSS from ``wait4``), rounds interleaved; every object is listed
afterwards (count and bytes must match the directory) and deleted, then ``--between``
runs. The S3 server's own CPU during each run is read from ``/proc`` where it runs on this
machine (radosgw here: the CPUs it takes are the client's limit). Streamify runs through
``_held.py``, which counts the most part bodies it held at once, so its peak RSS is set
beside 64 MiB plus the memory its parts actually took (the bound in the report).

Contenders (``--only``): ``streamify`` (the command with its defaults: the memory of 4
files x 4 parts, so up to 16 files of one part at a time), ``streamify-jobs16`` (``--jobs
16``), ``boto3`` (``upload_file`` per file from a pool of ``--threads`` threads sharing one
client, 4 parts at a time per file) and ``rclone`` (``rclone copy --transfers``
``--threads``, 4 parts at a time per file).
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _chart import grouped_bars
from _runs import (
    ChildFailed,
    Run,
    between,
    delete_prefix,
    git_revision,
    load_runs,
    machine,
    measure,
    median_of,
    past,
    reason,
    save_run,
    server_cpu,
    stored,
    versions,
)
from _shared import REGION, MiB, rclone_env

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
CONTENDERS = ("streamify", "streamify-jobs16", "boto3", "rclone")
LABELS = {
    "streamify": "`streamify upload DIR` (defaults: --jobs 4, --concurrency 4)",
    "streamify-jobs16": "`streamify upload DIR --jobs 16`",
    "boto3": "boto3 `upload_file` per file, thread pool",
    "rclone": "`rclone copy DIR`",
}
PARTS_PER_FILE = 4  # Streamify's default concurrency; the others are given the same
PART_SIZE = 8 * MiB  # Streamify's default part size (the command runs with its defaults)
GIVE_UP_AFTER = 2


def write_set(folder: Path, count: int, size: int) -> None:
    """``count`` files of ``size`` incompressible bytes, each different (an index first)."""
    folder.mkdir(parents=True)
    body = random.Random(count).randbytes(size)
    for index in range(count):
        (folder / f"file-{index:05d}.bin").write_bytes(index.to_bytes(8, "big") + body[8:])


def boto3_pool(folder: str, bucket: str, prefix: str, endpoint: str, threads: int,
               part_size: int) -> None:
    """Every file of ``folder`` with ``upload_file``, ``threads`` at a time, one client."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=Config(
        signature_version="s3v4", max_pool_connections=threads * PARTS_PER_FILE,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required", s3={"addressing_style": "path"}))
    transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                              max_concurrency=PARTS_PER_FILE)
    names = sorted(os.listdir(folder))
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(client.upload_file, os.path.join(folder, name), bucket,
                                 prefix + name, Config=transfer) for name in names]:
            done.result()


def command(contender: str, folder: str, bucket: str, prefix: str, args: argparse.Namespace,
            state_dir: str) -> list[str]:
    """The child's command line: every file of ``folder`` to ``prefix`` + folder name/."""
    name = Path(folder).name
    if contender.startswith("streamify"):
        jobs = ["--jobs", "16"] if contender == "streamify-jobs16" else []
        return [sys.executable, str(Path(__file__).with_name("_held.py")), "upload",
                "--endpoint-url", args.endpoint,
                "--no-progress", "--state-dir", state_dir, *jobs, folder,
                f"s3://{bucket}/{prefix}"]
    if contender == "rclone":
        return ["rclone", "copy", folder, f"bench:{bucket}/{prefix}{name}",
                "--transfers", str(args.threads), "--checkers", str(args.threads),
                "--s3-chunk-size", f"{args.part_size // 1024}Ki",
                "--s3-upload-concurrency", str(PARTS_PER_FILE)]
    return [sys.executable, __file__, "--child", "boto3", "--folder", folder, "--bucket",
            bucket, "--prefix", f"{prefix}{name}/", "--endpoint", args.endpoint,
            "--threads", str(args.threads), "--part-size", str(args.part_size)]


def run_all(args: argparse.Namespace, sets: list[tuple[int, int]], contenders: list[str],
            runs_file: Path) -> None:
    import boto3
    from sign_throughput import real_s3_stack

    env = rclone_env(args.endpoint)
    if args.tmp:
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    held_file = Path(tempfile.mkdtemp(dir=args.tmp)) / "held"
    env["STREAMIFY_HELD_FILE"] = str(held_file)
    with real_s3_stack(args.endpoint) as stack, \
            tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        s3, bucket = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION), \
            stack.bucket
        for count, size in sets:
            case = f"{count:,} x {format_size(size)[:-3]} {format_size(size)[-3:]}"
            folder = Path(tmp) / f"{count}x{format_size(size)}"
            write_set(folder, count, size)
            failures: dict[str, int] = {}
            for round_ in range(1, args.rounds + 1):
                for contender in contenders:
                    if failures.get(contender, 0) >= GIVE_UP_AFTER:
                        continue
                    if past(args.stop_at):
                        print(f"past {args.stop_at} UTC: no more uploads", file=sys.stderr)
                        return
                    prefix = f"many/{contender}-{uuid.uuid4().hex[:8]}/"
                    argv = command(contender, str(folder), bucket, prefix, args,
                                   str(Path(tmp) / "state"))
                    held_file.unlink(missing_ok=True)
                    try:
                        server_before = server_cpu()
                        seconds, cpu, rss = measure(argv, env=env, timeout=args.timeout)
                        served = server_cpu() - server_before
                        held = int(held_file.read_text()) if held_file.exists() else 0
                        found = stored(s3, bucket, prefix)
                        if found != (count, count * size):
                            raise ChildFailed(f"{found[0]} objects, {found[1]} bytes stored "
                                              f"under {prefix}, expected {count}, "
                                              f"{count * size}")
                        run = Run("many_files", case, contender, round_, count * size, count,
                                  seconds, cpu, rss, held=held, server_cpu=served)
                    except ChildFailed as failed:
                        failures[contender] = failures.get(contender, 0) + 1
                        run = Run("many_files", case, contender, round_, count * size, count,
                                  0, 0, 0, error=str(failed))
                    save_run(runs_file, run)
                    print(f"{case} round {round_} {contender:16} " + (
                        f"{count / run.seconds:7.1f} files/s "
                        f"{run.bytes / MiB / run.seconds:7.1f} MiB/s {run.cpu:6.2f} CPU-s "
                        f"{run.peak_rss // MiB:5d} MiB" if not run.error
                        else f"FAILED {run.error[-300:]}"), file=sys.stderr, flush=True)
                    delete_prefix(s3, bucket, prefix)
                    between(args.between)


def report(runs: list[Run], header: str) -> str:
    good = [run for run in runs if not run.error]
    lines = [header, ""]
    for case in dict.fromkeys(run.case for run in runs):
        here = [run for run in good if run.case == case]
        names = [name for name in CONTENDERS if any(run.contender == name for run in here)]
        seconds = {name: median_of((r for r in here if r.contender == name), "seconds")
                   for name in names}
        count = next(run.files for run in runs if run.case == case)
        size = next(run.bytes for run in runs if run.case == case)
        others = [name for name in names if not name.startswith("streamify")]
        best = min(others, key=lambda name: seconds[name]) if others else ""
        part = min(size // count, PART_SIZE)
        lines += [f"### {case}", "",
                  "| contender | files/s | MiB/s | vs best other | CPU-s | CPU ms per file "
                  "| server CPU-s | peak RSS MiB | parts held at most | 64 MiB + their bytes "
                  "| rounds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in names:
            mine = [r for r in here if r.contender == name]
            vs = f"{seconds[best] / seconds[name]:.2f}x" if best else ""
            held = max(r.held for r in mine)
            bound = f"{64 + held * part / MiB:.0f}" if held else ""
            lines.append(f"| {LABELS[name]} | {count / seconds[name]:.1f} | "
                         f"{size / MiB / seconds[name]:.1f} | {vs} | "
                         f"{median_of(mine, 'cpu'):.2f} | "
                         f"{median_of(mine, 'cpu') * 1000 / count:.2f} | "
                         f"{median_of(mine, 'server_cpu'):.1f} | "
                         f"{median_of(mine, 'peak_rss') / MiB:.0f} | {held or ''} | {bound} | "
                         f"{len(mine)} |")
        if best:
            lines += ["", f"Best other: {best} ({count / seconds[best]:.1f} files/s)."]
            floor = median_of([r for r in here if r.contender == best], "server_cpu")
            if floor > 0:
                lines += ["", f"The server's CPU alone, shared on {os.cpu_count()} CPUs, "
                          f"takes {floor / (os.cpu_count() or 1):.1f} s of {best}'s "
                          f"{seconds[best]:.1f} s: a client that took no CPU at all would "
                          f"reach at most {seconds[best] / (floor / (os.cpu_count() or 1)):.2f}x "
                          f"{best} here."]
        failed = [run for run in runs if run.case == case and run.error]
        if failed:
            lines += ["", "Failed runs (left out of the medians):", ""]
            lines += [f"- {run.contender}, round {run.round}: "
                      f"`{reason(run.error)}`" for run in failed]
        lines.append("")
    lines += ["### Every run", "", "| set | round | contender | seconds | files/s | MiB/s "
              "| CPU-s | peak RSS MiB |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {run.case} | {run.round} | {run.contender} | {run.seconds:.2f} | "
              f"{run.files / run.seconds:.1f} | {run.bytes / MiB / run.seconds:.1f} | "
              f"{run.cpu:.2f} | {run.peak_rss / MiB:.0f} |" for run in good]
    return "\n".join(lines) + "\n"


def chart(runs: list[Run], path: Path) -> None:
    good = [run for run in runs if not run.error]
    cases = list(dict.fromkeys(run.case for run in good))
    names = [name for name in CONTENDERS if any(run.contender == name for run in good)]
    panels: list[tuple[str, dict[tuple[str, str], float]]] = [
        ("files/s (median)", {}), ("MiB/s (median)", {}), ("client CPU-s", {})]
    for case in cases:
        for name in names:
            mine = [run for run in good if run.case == case and run.contender == name]
            if mine:
                seconds = median_of(mine, "seconds")
                panels[0][1][case, name] = mine[0].files / seconds
                panels[1][1][case, name] = mine[0].bytes / MiB / seconds
                panels[2][1][case, name] = median_of(mine, "cpu")
    grouped_bars(path, "Many files to one prefix: every command in its own process, "
                 "interleaved", cases, names, panels)


def format_size(size: int) -> str:
    """``100KiB``, ``1MiB``: a set's file size as ``--sets`` takes it."""
    return f"{size // MiB}MiB" if size % MiB == 0 else f"{size // 1024}KiB"


def parse_sets(text: str) -> list[tuple[int, int]]:
    from streamify import parse_size

    sets = []
    for item in text.split(","):
        count, size = item.split("x", 1)
        sets.append((int(count), parse_size(size)))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sets", default="10000x100KiB,1000x1MiB,50x64MiB",
                        help="COUNTxSIZE,...: one directory of COUNT files of SIZE each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16,
                        help="boto3's pool and rclone's --transfers")
    parser.add_argument("--part-size", type=int, default=8 * MiB)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    parser.add_argument("--between", default="",
                        help="command run after each run's objects are deleted")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--stop-at", default="", help="UTC HH:MM: start no run after it")
    parser.add_argument("--tmp", default=None, help="where the directories are written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=None,
                        help="only rebuild the markdown and chart from this runs file")
    parser.add_argument("--child")
    parser.add_argument("--folder")
    parser.add_argument("--bucket")
    parser.add_argument("--prefix")
    args = parser.parse_args()
    if args.child:
        boto3_pool(args.folder, args.bucket, args.prefix, args.endpoint, args.threads,
                   args.part_size)
        return
    runs_file = args.report or args.out / "many_files-runs.jsonl"
    header_file = runs_file.with_suffix(".header.md")
    if not args.report:
        if not args.endpoint:
            raise SystemExit("set S3_ENDPOINT_URL (source /tmp/rgw.env) or pass --endpoint")
        unknown = set(args.only.split(",")) - set(CONTENDERS)
        if unknown:
            raise SystemExit(f"unknown contenders {sorted(unknown)}; known: {CONTENDERS}")
        args.out.mkdir(parents=True, exist_ok=True)
        runs_file.write_text("")
        header_file.write_text(
            f"Command: `{shlex.join(['python', 'benchmarks/many_files.py', *sys.argv[1:]])}`"
            + (f" (run by `{os.environ['BENCH_RUN_BY']}`)" if "BENCH_RUN_BY" in os.environ
               else "")
            + f"\n\nMachine: {machine()}; S3 at {args.endpoint} (shares the machine's CPUs)\n\n"
            f"Started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
            f"{git_revision()}; {versions()}\n\n"
            f"{args.part_size // MiB} MiB parts where a tool splits a file, {PARTS_PER_FILE} "
            f"parts at a time per file; boto3's pool and rclone's `--transfers`: "
            f"{args.threads}. Each command in a child process of its own (CPU = user + system "
            f"from `wait4`, peak RSS = its `ru_maxrss`; interpreter start and imports "
            f"included); medians over the rounds. 'vs best other' is the best non-Streamify "
            f"contender's median time over this one's.\n")
        run_all(args, parse_sets(args.sets), args.only.split(","), runs_file)
    runs = load_runs(runs_file)
    header = "# Many files to one prefix\n\n" + (
        header_file.read_text() if header_file.exists() else "")
    markdown = report(runs, header)
    (args.out / "many_files.md").write_text(markdown)
    chart(runs, args.out / "many_files.png")
    print(markdown)


if __name__ == "__main__":
    main()
