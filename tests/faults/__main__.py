"""``python -m tests.faults``: the fault soak, by hand; prints every upload, each seed's
summary (with its front end x fault kind counts) and the per-seed table.

The short run (CI runs a smaller one as ``tests/faults/test_soak.py``)::

    python -m tests.faults --uploads 20 --max-size 24MiB --seeds 1,2,3

The long soak, on a private radosgw (``../shared/s3/rgw-up.sh`` builds it beside the shared
one, with its own directory and ports; wiped afterwards), so that the storage restart is
in the mix too; its garbage collection runs after each upload, so its memory holds one
upload at a time::

    python -m tests.faults --uploads 50 --max-size 512MiB --part-size 8MiB --concurrency 4 \\
        --seeds 1,2,3 --private-rgw

``--endpoint URL`` runs against another S3 server (``--rgw-gc CONF`` for its garbage
collection); with neither, against moto's S3 server on loopback. The storage restart is
available only with ``--private-rgw``.

Exit status 1 if any upload was not verified byte-identical, re-sent too much, or left a
multipart upload open.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from streamify import parse_size

from tests.faults._rgw import PrivateRgw, private_rgw
from tests.faults._soak import FRONT_ENDS, Ledger, SoakSettings, run_soak, table
from tests.faults._stack import open_stack


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    # moto logs the parts it refuses after an abort (on purpose here) with their tracebacks.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _rgw_gc(conf: Path) -> Callable[[], None]:
    if not conf.is_file():
        raise SystemExit(f"--rgw-gc: {conf} is not a file (radosgw's ceph.conf, e.g. "
                         "/tmp/rgw/cluster/ceph.conf)")

    def collect() -> None:
        subprocess.run(["radosgw-admin", "-c", str(conf), "gc", "process", "--include-all"],
                       check=True, capture_output=True, timeout=300)
    return collect


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--seeds {text!r}: give seeds as integers separated by commas, "
                         "e.g. 1,2,3") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=50, help="uploads per seed")
    parser.add_argument("--max-size", default="24MiB")
    parser.add_argument("--part-size", default="5MiB")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.10,
                        help="share of requests meeting a network fault")
    parser.add_argument("--fault-rate", type=float, default=0.5,
                        help="share of uploads meeting a process, data, storage restart or "
                             "API service restart fault")
    parser.add_argument("--seeds", default="1", help="comma-separated, e.g. 1,2,3")
    parser.add_argument("--seed", type=int, help="one seed (same as --seeds N)")
    parser.add_argument("--front-ends", default=",".join(FRONT_ENDS))
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="an S3 endpoint (default: moto on loopback)")
    where.add_argument("--private-rgw", action="store_true",
                       help="build a private radosgw for the run (storage restarts too)")
    parser.add_argument("--rgw-gc", metavar="CONF", type=Path,
                        help="radosgw's ceph.conf: run its garbage collection after each upload")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else _seeds(args.seeds)
    front_ends = tuple(name for name in args.front_ends.split(",") if name)
    if not set(front_ends) <= set(FRONT_ENDS) or not front_ends:
        raise SystemExit(f"--front-ends: choose among {', '.join(FRONT_ENDS)}")
    for name, value in (("AWS_ACCESS_KEY_ID", "streamify-test"),
                        ("AWS_SECRET_ACCESS_KEY", "streamify-test-secret"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    ledgers: list[Ledger] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        rgw: PrivateRgw | None = None
        gc = _rgw_gc(args.rgw_gc) if args.rgw_gc else None
        if args.private_rgw:
            rgw = stack.enter_context(private_rgw(workdir / "rgw"))
            os.environ.update(AWS_ACCESS_KEY_ID=rgw.access_key,
                              AWS_SECRET_ACCESS_KEY=rgw.secret_key)
            endpoint = rgw.endpoint
            gc = _rgw_gc(rgw.conf)
        else:
            endpoint = args.endpoint or stack.enter_context(_moto())
        # One bucket for every seed: after a radosgw restart, a bucket is created or
        # deleted only once the killed daemon's watch times out (about 30 s).
        running = stack.enter_context(open_stack(endpoint, keep_bucket=rgw is not None))
        for seed in seeds:
            settings = SoakSettings(uploads=args.uploads, max_size=parse_size(args.max_size),
                                    part_size=parse_size(args.part_size),
                                    concurrency=args.concurrency, rate=args.rate,
                                    fault_rate=args.fault_rate, seed=seed,
                                    front_ends=front_ends, after_each=gc, rgw=rgw)
            seed_dir = workdir / f"seed-{seed}"
            seed_dir.mkdir()
            ledger = run_soak(running, settings, seed_dir, report=print)
            print(ledger.summary(), flush=True)
            ledgers.append(ledger)
    print("\nper seed:\n" + table(ledgers))
    return 1 if any(ledger.problems for ledger in ledgers) else 0


if __name__ == "__main__":
    sys.exit(main())
