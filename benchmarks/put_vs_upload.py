"""Many small files two ways over the one batch runner: fsspec ``put`` beside the command.

The same directory (``--count`` files of ``--size``, 1,000 x 1 MiB by default) goes to a
prefix with Streamify's defaults (8 MiB parts, concurrency 4, 4 files of many parts or 16
of one part at a time) two ways:

- ``cli``: ``streamify upload DIR s3://bucket/prefix/`` (the command, ``--no-progress``);
- ``put``: ``fsspec.filesystem("streamify", ...).put("DIR/", "bucket/prefix/",
  recursive=True)`` in a plain Python program.

Each run is a child process of its own (wall time, CPU = user + system and peak RSS from
``wait4``; interpreter start and imports included), rounds interleaved; the objects are
counted afterwards (count and bytes must match) and deleted. Reported: medians, and the
ratios of ``put`` to ``cli``.

The endpoint is ``--endpoint``, else ``$S3_ENDPOINT_URL``, else a moto server in its own
process on loopback.

    python benchmarks/put_vs_upload.py [--count 1000] [--size 1MiB] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from _runs import (
    Run,
    delete_prefix,
    git_revision,
    machine,
    measure,
    median_of,
    stored,
    versions,
)
from _shared import REGION, MiB, moto_server, write_file

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = {"cli": "`streamify upload DIR`", "put": "fsspec `put(DIR, recursive=True)`"}


def put_child(folder: str, bucket: str, prefix: str, endpoint: str, state_dir: str) -> None:
    """The ``put`` contender, in its own process."""
    import fsspec

    fs = fsspec.filesystem("streamify", endpoint_url=endpoint,
                           client_kwargs={"region_name": REGION}, state_dir=state_dir,
                           skip_instance_cache=True)
    fs.put(folder.rstrip("/") + "/", f"{bucket}/{prefix}", recursive=True)


def command(contender: str, folder: str, bucket: str, prefix: str, endpoint: str,
            state_dir: str) -> list[str]:
    if contender == "cli":
        return [sys.executable, "-m", "streamify", "upload", folder, f"s3://{bucket}/{prefix}",
                "--endpoint-url", endpoint, "--state-dir", state_dir, "--no-progress"]
    return [sys.executable, __file__, "--child", "--folder", folder, "--bucket", bucket,
            "--prefix", prefix, "--endpoint", endpoint, "--state-dir", state_dir]


def run_all(args: argparse.Namespace, endpoint: str) -> list[Run]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    case = f"{args.count:,} x {args.size // 1024} KiB"
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "files"
            folder.mkdir()
            for index in range(args.count):
                write_file(folder / f"file-{index:05d}.bin", args.size)
            for round_ in range(1, args.rounds + 1):
                for contender in ("cli", "put"):
                    prefix = f"{contender}-{uuid.uuid4().hex[:8]}/"
                    argv = command(contender, str(folder), bucket, prefix, endpoint,
                                   str(Path(tmp) / f"state-{prefix.rstrip('/')}"))
                    seconds, cpu, rss = measure(argv, timeout=args.timeout)
                    # The command keeps the folder's name under the prefix; put does not.
                    found = stored(s3, bucket, prefix)
                    if found != (args.count, args.count * args.size):
                        raise SystemExit(f"{contender}: {found} stored under {prefix}")
                    runs.append(Run("put_vs_upload", case, contender, round_,
                                    args.count * args.size, args.count, seconds, cpu, rss))
                    print(f"round {round_} {contender:4} {seconds:6.2f} s "
                          f"{args.count / seconds:6.1f} files/s {cpu:6.2f} CPU-s "
                          f"{rss // MiB:4d} MiB", file=sys.stderr, flush=True)
                    delete_prefix(s3, bucket, prefix)
    finally:
        delete_prefix(s3, bucket, "")
        s3.delete_bucket(Bucket=bucket)
    return runs


def report(runs: list[Run], header: str) -> str:
    lines = [header, "", "| contender | seconds | files/s | CPU-s | peak RSS MiB | rounds |",
             "|---|---:|---:|---:|---:|---:|"]
    medians: dict[str, dict[str, float]] = {}
    for name in ("cli", "put"):
        mine = [run for run in runs if run.contender == name]
        medians[name] = {field: median_of(mine, field)
                         for field in ("seconds", "cpu", "peak_rss")}
        lines.append(f"| {LABELS[name]} | {medians[name]['seconds']:.2f} | "
                     f"{mine[0].files / medians[name]['seconds']:.1f} | "
                     f"{medians[name]['cpu']:.2f} | {medians[name]['peak_rss'] / MiB:.0f} | "
                     f"{len(mine)} |")
    put, cli = medians["put"], medians["cli"]
    lines += ["", f"Ratios put / cli: wall time {put['seconds'] / cli['seconds']:.2f}x, "
              f"CPU {put['cpu'] / cli['cpu']:.2f}x, peak RSS "
              f"{put['peak_rss'] / cli['peak_rss']:.2f}x.", "",
              "| round | contender | seconds | CPU-s | peak RSS MiB |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {run.round} | {run.contender} | {run.seconds:.2f} | {run.cpu:.2f} | "
              f"{run.peak_rss / MiB:.0f} |" for run in runs]
    return "\n".join(lines) + "\n"


def main() -> None:
    from streamify import parse_size

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=parse_size, default="1MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--folder")
    parser.add_argument("--bucket")
    parser.add_argument("--prefix")
    parser.add_argument("--state-dir")
    args = parser.parse_args()
    if args.child:
        put_child(args.folder, args.bucket, args.prefix, args.endpoint, args.state_dir)
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    with ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(moto_server())
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        runs = run_all(args, endpoint)
    where = "moto (its own process)" if not args.endpoint else args.endpoint
    header = (
        "# fsspec put beside `streamify upload DIR`\n\n"
        f"Command: `{shlex.join(['python', 'benchmarks/put_vs_upload.py', *sys.argv[1:]])}`"
        f"\n\nMachine: {machine()}; S3: {where} on loopback (shares the CPUs)\n\n"
        f"Started {started}, commit {git_revision()}; {versions()}\n\n"
        "Defaults for both (8 MiB parts, concurrency 4, jobs / batch_size 4). Each run in "
        "a child process of its own (CPU = user + system from `wait4`, peak RSS = its "
        "`ru_maxrss`; interpreter start and imports included); medians over the rounds.")
    markdown = report(runs, header)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "put_vs_upload.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
