"""A stream of unknown size from standard input: bounded memory, growing parts, exact bytes.

    source /tmp/rgw.env
    python benchmarks/stream_stdin.py --size 6GiB --part-size 5MiB --concurrency 8

runs ``head -c SIZE /dev/urandom | tee >(sha256sum) | streamify upload - s3://BUCKET/KEY``
through a counting proxy on loopback (``tests/wireproxy.py``), then reports the uploading
process's peak RSS (from ``wait4``) against its bound (100 MiB + concurrency x the largest
part), every part's size as the server received it against the growth schedule
(``stream_part_size``: the part size doubles every 900 parts), and the SHA-256 of the
object read back against the stream's. A stream over 900 x part size shows the growth.
Exit status 1 if any check fails. Not a timed test: it runs by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
from botocore.config import Config
from streamify import parse_size
from streamify._plan import stream_part_size

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.wireproxy import WireProxy

MiB = 1024 * 1024


def _object_sha256(client: object, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
    for chunk in body.iter_chunks(8 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="3GiB")
    parser.add_argument("--part-size", default="5MiB")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bucket", default="streamify-stream-bench")
    parser.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT_URL"))
    args = parser.parse_args()
    if not args.endpoint:
        raise SystemExit("set S3_ENDPOINT_URL (source /tmp/rgw.env) or pass --endpoint")
    size, part_size = parse_size(args.size), parse_size(args.part_size)
    client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=args.bucket)
    key = f"stdin-{args.size}.bin"
    proxy = WireProxy(args.endpoint)
    digest_file = Path(f"/tmp/stream-stdin-{os.getpid()}.sha256")
    streamify = Path(sys.executable).with_name("streamify")
    command = (f"head -c {size} /dev/urandom | tee >(sha256sum > {digest_file}) | "
               f"{streamify} upload - s3://{args.bucket}/{key} --endpoint-url {proxy.url} "
               f"--part-size {part_size} --concurrency {args.concurrency} --json --no-progress")
    started = time.monotonic()
    # bash runs the pipeline; streamify is its last command, so RUSAGE_CHILDREN's largest
    # maxrss is the largest of head, tee, sha256sum and streamify: streamify's by far.
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True,
                          text=True, check=False)
    seconds = time.monotonic() - started
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"the pipeline failed with status {done.returncode}")
    for _ in range(50):  # sha256sum finishes after tee closes its output
        if digest_file.is_file() and digest_file.stat().st_size:
            break
        time.sleep(0.1)
    stream_sha = digest_file.read_text().split()[0]
    digest_file.unlink()
    parts = proxy.counts().parts
    proxy.close()
    sizes = {number: body for (_, number), body in sorted(parts.items(), key=lambda p: p[0][1])}
    count = max(sizes)
    expected = {n: stream_part_size(n, part_size) for n in range(1, count)}
    schedule_ok = (sorted(sizes) == list(range(1, count + 1))
                   and all(sizes[n] == expected[n] for n in expected)
                   and 0 < sizes[count] <= stream_part_size(count, part_size)
                   and sum(sizes.values()) == size)
    largest = max(sizes.values())
    bound = 100 * MiB + args.concurrency * largest
    object_sha = _object_sha256(client, args.bucket, key)
    client.delete_object(Bucket=args.bucket, Key=key)
    histogram = Counter(sizes[n] for n in range(1, count))
    rows = [
        ("command", f"`head -c {args.size} /dev/urandom | streamify upload - "
                    f"s3://{args.bucket}/{key} --part-size {args.part_size} "
                    f"--concurrency {args.concurrency}`"),
        ("bytes", f"{size} in {seconds:.1f} s ({size / seconds / MiB:.1f} MiB/s, through a "
                  "counting proxy)"),
        ("parts", f"{count}: " + ", ".join(f"{n} x {s // MiB} MiB" for s, n in
                                          sorted(histogram.items()))
                  + f", last {sizes[count]} B"),
        ("growth schedule", "as planned" if schedule_ok else "NOT as planned"),
        ("peak RSS", f"{peak_rss / MiB:.0f} MiB (bound 100 MiB + {args.concurrency} x "
                     f"{largest // MiB} MiB = {bound / MiB:.0f} MiB)"),
        ("SHA-256 of the stream", stream_sha),
        ("SHA-256 of the object", object_sha),
    ]
    print("| | |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    checks = {"schedule": schedule_ok, "memory": peak_rss <= bound,
              "bytes": stream_sha == object_sha}
    failed = [name for name, ok in checks.items() if not ok]
    print("all checks passed" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
