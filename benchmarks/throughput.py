"""Upload throughput and client CPU per GiB: every contender in one run, interleaved.

Each upload runs in a child process of its own; its CPU (user + system) and peak resident
set come from ``wait4`` on that child, its speed from the wall time around it. Rounds are
interleaved (ceiling, streamify, boto3, ... then again), so a slow moment of the shared
machine falls on every contender alike. Medians over the rounds; ratios to the raw
ceiling, to obstore, and of the API service to direct.

    bash benchmarks/run.sh                      # installs, brings radosgw up, runs it all
    source /tmp/rgw.env                         # or by hand, against a running S3
    flock /tmp/streamify-heavy.lock python benchmarks/throughput.py --sizes 1GiB,4GiB \\
        --between "radosgw-admin -c /tmp/rgw/cluster/ceph.conf gc process --include-all"

Contenders (``--only`` picks some), all with the same part size and concurrency:
``ceiling`` (presigned PUTs with ``http.client``, one connection per thread, no hashing,
no bookkeeping: what the wire and the server allow), ``ceiling-md5`` (the same with a
Content-MD5 per part: what any client that has the store check each part can reach),
``streamify`` (``streamify upload``,
direct, Content-MD5 on every part), ``streamify-crc64`` (the same with ``--checksum
crc64nvme --no-content-md5``: a CRC64NVME per part and of the whole object instead of
Content-MD5; radosgw 16.2 ignores ``x-amz-checksum-*``, so here it is only the client's
cost: ``tests/functional/test_crc_checksums.py`` has moto compute the stored object's
CRC64NVME and match it), ``streamify-api`` (the same through ``streamify
serve`` in front of the same S3), ``boto3`` (``upload_file``), ``s3fs`` (``put_file``),
``obstore`` (``put``), ``crt`` (the AWS CRT S3 client through s3transfer's
``CRTTransferManager``) and ``rclone`` (``rclone copy``); and ``md5``, a reference that
uploads nothing: what reading every part and hashing it costs alone.

Every object is deleted right after its upload is measured, then ``--between`` runs:
radosgw's memstore frees deleted data only when its garbage collector runs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    versions,
)
from _shared import REGION, MiB, rclone_env, upload_with, write_file

__all__ = ["main"]

GiB = 1024 * MiB
RESULTS = Path(__file__).resolve().parent / "results"
CONTENDERS = ("ceiling", "ceiling-md5", "streamify", "streamify-crc64", "streamify-api",
              "boto3", "s3fs", "obstore", "crt", "rclone", "md5")
LABELS = {
    "ceiling": "raw ceiling: presigned PUTs, `http.client`, no hashing",
    "ceiling-md5": "the raw ceiling with Content-MD5 per part (`hashlib`)",
    "streamify": "`streamify upload` direct (Content-MD5 per part)",
    "streamify-crc64": "`streamify upload --checksum crc64nvme --no-content-md5` direct",
    "streamify-api": "`streamify upload --api` (through `streamify serve`)",
    "boto3": "boto3 `upload_file` (no Content-MD5)",
    "s3fs": "s3fs `put_file`",
    "obstore": "obstore `put` (no integrity header)",
    "crt": "AWS CRT client (s3transfer `CRTTransferManager`)",
    "rclone": "`rclone copy`",
    "md5": "reference, no upload: read every part and its MD5 (`os.pread`, `hashlib`)",
}
GIVE_UP_AFTER = 2  # failures of one contender at one size before it is left out
WHEN_REFUSED = {
    "crt": "s3transfer always has the CRT send each part as an aws-chunked body with a CRC32 "
           "trailer; a store that does not take trailing checksums (Ceph radosgw 16.2 "
           "answers XAmzContentSHA256Mismatch) refuses every part, so there is no CRT figure "
           "for it.",
}


def ceiling(path: str, bucket: str, key: str, endpoint: str, part_size: int,
            concurrency: int, *, content_md5: bool = False) -> None:
    """Presigned part PUTs through ``http.client``: no state, no retries, and no hashing
    unless ``content_md5`` (then each part carries its MD5, which the store checks)."""
    import base64
    import hashlib
    import http.client
    import threading
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    size = os.path.getsize(path)
    count = -(-size // part_size)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    urls = [s3.generate_presigned_url("upload_part", Params={
        "Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}, ExpiresIn=3600)
        for n in range(1, count + 1)]
    local = threading.local()
    fd = os.open(path, os.O_RDONLY)

    def put(number: int) -> dict[str, Any]:
        url = urllib.parse.urlsplit(urls[number - 1])
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(url.netloc, timeout=120)
        body = os.pread(fd, part_size, (number - 1) * part_size)
        headers = {"Content-Length": str(len(body))}
        if content_md5:
            digest = hashlib.md5(body, usedforsecurity=False).digest()
            headers["Content-MD5"] = base64.b64encode(digest).decode()
        local.conn.request("PUT", f"{url.path}?{url.query}", body=body, headers=headers)
        answer = local.conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"part {number}: HTTP {answer.status}")
        return {"PartNumber": number, "ETag": answer.getheader("ETag")}

    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(put, range(1, count + 1)))
    os.close(fd)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})  # type: ignore[typeddict-item]


def md5_parts(path: str, part_size: int) -> None:
    """What Content-MD5 costs alone: every part read and hashed, one thread, no upload."""
    import hashlib

    fd = os.open(path, os.O_RDONLY)
    try:
        for offset in range(0, os.fstat(fd).st_size, part_size):
            hashlib.md5(os.pread(fd, part_size, offset), usedforsecurity=False).digest()
    finally:
        os.close(fd)


def child_main(args: argparse.Namespace) -> None:
    """One upload in this (child) process."""
    if args.child == "md5":
        md5_parts(args.path, args.part_size)
    elif args.child in ("ceiling", "ceiling-md5"):
        ceiling(args.path, args.bucket, args.key, args.endpoint, args.part_size,
                args.concurrency, content_md5=args.child == "ceiling-md5")
    else:
        upload_with(args.child, args.path, args.bucket, args.key, args.endpoint,
                    args.part_size, args.concurrency)


def command(contender: str, path: str, bucket: str, prefix: str, args: argparse.Namespace,
            api: tuple[str, str], state_dir: str) -> list[str]:
    """The child's command line: it uploads ``path`` to ``prefix`` + the file's name."""
    key = prefix + Path(path).name
    if contender in ("streamify", "streamify-crc64", "streamify-api"):
        where = (["--api", api[0], "--token", api[1]] if contender == "streamify-api"
                 else ["--endpoint-url", args.endpoint])
        if contender == "streamify-crc64":
            where += ["--checksum", "crc64nvme", "--no-content-md5"]
        return [sys.executable, "-m", "streamify", "upload", *where, "--no-progress",
                "--state-dir", state_dir, "--part-size", str(args.part_size),
                "--concurrency", str(args.concurrency), path, f"s3://{bucket}/{key}"]
    if contender == "rclone":
        # rclone copies a file into a folder under its own name: the same key.
        return ["rclone", "copy", path, f"bench:{bucket}/{prefix}",
                "--s3-chunk-size", f"{args.part_size // 1024}Ki",
                "--s3-upload-concurrency", str(args.concurrency)]
    return [sys.executable, __file__, "--child", contender, "--path", path, "--bucket", bucket,
            "--key", key, "--endpoint", args.endpoint, "--part-size", str(args.part_size),
            "--concurrency", str(args.concurrency)]


@contextmanager
def api_service(endpoint: str) -> Iterator[tuple[str, str, str]]:
    """``streamify serve`` before the same S3, with its own bucket: (url, token, bucket)."""
    from sign_throughput import real_s3_stack

    with real_s3_stack(endpoint) as stack:
        yield stack.api_url, stack.token, stack.bucket


def run_all(args: argparse.Namespace, sizes: list[int], contenders: list[str],
            runs_file: Path) -> None:
    """Every size, every round, every contender in turn; each run saved as it ends."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION)
    env = rclone_env(args.endpoint)
    with api_service(args.endpoint) as (url, token, bucket), \
            tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for size in sizes:
            case = f"{size / GiB:g} GiB"
            path = str(Path(tmp) / f"source-{size}.bin")
            write_file(Path(path), size)
            failures: dict[str, int] = {}
            for round_ in range(1, args.rounds + 1):
                for contender in contenders:
                    if failures.get(contender, 0) >= GIVE_UP_AFTER:
                        continue
                    if past(args.stop_at):
                        print(f"past {args.stop_at} UTC: no more uploads", file=sys.stderr)
                        return
                    prefix = f"throughput/{contender}-{uuid.uuid4().hex[:8]}/"
                    argv = command(contender, path, bucket, prefix, args, (url, token),
                                   str(Path(tmp) / "state"))
                    try:
                        seconds, cpu, rss = measure(argv, env=env, timeout=args.timeout)
                        run = Run("throughput", case, contender, round_, size, 1, seconds,
                                  cpu, rss)
                    except ChildFailed as failed:
                        failures[contender] = failures.get(contender, 0) + 1
                        run = Run("throughput", case, contender, round_, size, 1, 0, 0, 0,
                                  error=str(failed))
                    save_run(runs_file, run)
                    print(f"{case} round {round_} {contender:13} "
                          + (f"{size / MiB / run.seconds:7.1f} MiB/s {run.cpu:6.2f} CPU-s "
                             f"{run.peak_rss // MiB:5d} MiB" if not run.error
                             else f"FAILED {run.error[-300:]}"), file=sys.stderr, flush=True)
                    delete_prefix(s3, bucket, prefix)
                    between(args.between)
            os.unlink(path)


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value and base else ""


def report(runs: list[Run], header: str) -> str:
    """The markdown: medians per size with ratios, failures, then every run."""
    good = [run for run in runs if not run.error]
    cases = list(dict.fromkeys(run.case for run in runs))
    lines = [header, ""]
    for case in cases:
        here = [run for run in good if run.case == case]
        size = next(run.bytes for run in runs if run.case == case)
        names = [name for name in CONTENDERS if any(run.contender == name for run in here)]
        speed = {name: size / MiB / median_of((r for r in here if r.contender == name),
                                              "seconds") for name in names}
        cpu = {name: median_of((r for r in here if r.contender == name), "cpu") * GiB / size
               for name in names}
        rss = {name: median_of((r for r in here if r.contender == name), "peak_rss") / MiB
               for name in names}
        rounds = {name: sum(r.contender == name for r in here) for name in names}
        lines += [f"### {case}", "",
                  "| contender | MiB/s | vs ceiling | vs obstore | CPU-s per GiB "
                  "| CPU-s per GiB minus ceiling's | peak RSS MiB | rounds |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name in names:
            extra = f"{cpu[name] - cpu['ceiling']:+.2f}" if "ceiling" in cpu else ""
            lines.append(f"| {LABELS[name]} | {speed[name]:.1f} | "
                         f"{ratio(speed[name], speed.get('ceiling'))} | "
                         f"{ratio(speed[name], speed.get('obstore'))} | {cpu[name]:.2f} | "
                         f"{extra} | {rss[name]:.0f} | {rounds[name]} |")
        if "streamify" in speed and "ceiling-md5" in speed:
            lines += ["", f"Streamify direct against the raw ceiling with Content-MD5: "
                      f"{ratio(speed['streamify'], speed['ceiling-md5'])} the MiB/s, "
                      f"{ratio(cpu['streamify'], cpu['ceiling-md5'])} the client CPU."]
        if "streamify-crc64" in speed and "ceiling" in speed:
            lines += ["", f"Streamify with CRC64NVME instead of Content-MD5 against the raw "
                      f"ceiling: {ratio(speed['streamify-crc64'], speed['ceiling'])} the MiB/s"
                      + (f", against obstore {ratio(speed['streamify-crc64'], speed['obstore'])}"
                         if "obstore" in speed else "")
                      + f"; {cpu['streamify-crc64']:.2f} CPU-s per GiB against the ceiling's "
                      f"{cpu['ceiling']:.2f}."]
        if "streamify" in speed and "streamify-api" in speed:
            lines += ["", f"Through the API service against direct: "
                      f"{ratio(speed['streamify-api'], speed['streamify'])} the MiB/s, "
                      f"{ratio(cpu['streamify-api'], cpu['streamify'])} the client CPU "
                      f"(the service's own CPU is not counted)."]
        if {"streamify", "ceiling", "md5"} <= cpu.keys():
            beyond = cpu["streamify"] - cpu["ceiling"] - cpu["md5"]
            lines += ["", f"Streamify direct spends {beyond:+.2f} CPU-s per GiB beyond the "
                      f"ceiling's plus reading and hashing every part alone (the md5 row)."]
        failed = [run for run in runs if run.case == case and run.error]
        if failed:
            lines += ["", "Failed uploads (left out of the medians):", ""]
            lines += [f"- {run.contender}, round {run.round}: "
                      f"`{reason(run.error)}`" for run in failed]
            lines += ["", *(WHEN_REFUSED[name] for name in dict.fromkeys(
                run.contender for run in failed) if name in WHEN_REFUSED)]
        lines.append("")
    lines += ["### Every run", "", "| size | round | contender | seconds | MiB/s | CPU-s "
              "| peak RSS MiB |", "|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {run.case} | {run.round} | {run.contender} | {run.seconds:.2f} | "
              f"{run.bytes / MiB / run.seconds:.1f} | {run.cpu:.2f} | "
              f"{run.peak_rss / MiB:.0f} |" for run in good]
    return "\n".join(lines) + "\n"


def chart(runs: list[Run], path: Path) -> None:
    good = [run for run in runs if not run.error]
    cases = list(dict.fromkeys(run.case for run in good))
    names = [name for name in CONTENDERS if any(run.contender == name for run in good)]
    panels: list[tuple[str, dict[tuple[str, str], float]]] = [
        ("MiB/s (median)", {}), ("client CPU-s per GiB", {}), ("peak RSS MiB", {})]
    for case in cases:
        for name in names:
            mine = [run for run in good if run.case == case and run.contender == name]
            if not mine:
                continue
            size = mine[0].bytes
            panels[0][1][case, name] = size / MiB / median_of(mine, "seconds")
            panels[1][1][case, name] = median_of(mine, "cpu") * GiB / size
            panels[2][1][case, name] = median_of(mine, "peak_rss") / MiB
    grouped_bars(path, "Upload of one file: every contender in its own process, interleaved",
                 cases, names, panels)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="1GiB,4GiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-size", type=int, default=8 * MiB)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    parser.add_argument("--between", default="",
                        help="command run after each upload's object is deleted")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds before one upload is killed and counted as failed")
    parser.add_argument("--stop-at", default="", help="UTC HH:MM: start no upload after it")
    parser.add_argument("--tmp", default=None, help="where the source files are written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=None,
                        help="only rebuild the markdown and chart from this runs file")
    parser.add_argument("--child")
    parser.add_argument("--path")
    parser.add_argument("--bucket")
    parser.add_argument("--key")
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    runs_file = args.report or args.out / "throughput-runs.jsonl"
    header_file = runs_file.with_suffix(".header.md")
    if not args.report:
        if not args.endpoint:
            raise SystemExit("set S3_ENDPOINT_URL (source /tmp/rgw.env) or pass --endpoint")
        from streamify import parse_size

        unknown = set(args.only.split(",")) - set(CONTENDERS)
        if unknown:
            raise SystemExit(f"unknown contenders {sorted(unknown)}; known: {CONTENDERS}")
        args.out.mkdir(parents=True, exist_ok=True)
        runs_file.write_text("")
        header_file.write_text(
            f"Command: `{shlex.join(['python', 'benchmarks/throughput.py', *sys.argv[1:]])}`"
            + (f" (run by `{os.environ['BENCH_RUN_BY']}`)" if "BENCH_RUN_BY" in os.environ
               else "")
            + f"\n\nMachine: {machine()}; S3 at {args.endpoint} (shares the machine's CPUs)\n\n"
            f"Started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit "
            f"{git_revision()}; {versions()}\n\n"
            f"{args.concurrency} x {args.part_size // MiB} MiB parts for every contender, "
            f"incompressible bytes, each upload in a child process of its own (CPU = user + "
            f"system from `wait4`, peak RSS = that child's `ru_maxrss`: interpreter start "
            f"and imports included); medians over the rounds.\n")
        run_all(args, [parse_size(size) for size in args.sizes.split(",")],
                args.only.split(","), runs_file)
    runs = load_runs(runs_file)
    header = "# Upload throughput and client CPU\n\n" + (
        header_file.read_text() if header_file.exists() else "")
    markdown = report(runs, header)
    (args.out / "throughput.md").write_text(markdown)
    chart(runs, args.out / "throughput.png")
    print(markdown)


if __name__ == "__main__":
    main()
