"""``python -m tests.faults``: the fault soak, by hand; prints every upload and the summary.

The short run (CI runs it as ``tests/faults/test_soak.py``)::

    python -m tests.faults --uploads 50 --max-size 24MiB

The long soak, against the real S3 server (``source /tmp/rgw.env`` first)::

    python -m tests.faults --uploads 50 --max-size 512MiB --part-size 8MiB --concurrency 4 \\
        --endpoint "$S3_ENDPOINT_URL"

Without ``--endpoint`` it starts moto's S3 server on loopback. Each object is deleted once
verified, but radosgw frees deleted data only when its garbage collection runs (hours
later by default), so the storage would have to hold every byte the soak sends: about
``uploads x max_size / 2`` (12.5 GiB for the command above). ``--rgw-gc CONF`` runs
``radosgw-admin -c CONF gc process --include-all`` after each upload, so a radosgw that
keeps its data in memory needs room for one upload at a time::

    python -m tests.faults --uploads 50 --max-size 512MiB --part-size 8MiB --concurrency 4 \
        --endpoint "$S3_ENDPOINT_URL" --rgw-gc /tmp/rgw/cluster/ceph.conf

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

from tests.faults._soak import SoakSettings, run_soak
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--max-size", default="24MiB")
    parser.add_argument("--part-size", default="5MiB")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--endpoint", help="an S3 endpoint (default: moto on loopback)")
    parser.add_argument("--rgw-gc", metavar="CONF", type=Path,
                        help="radosgw's ceph.conf: run its garbage collection after each upload")
    args = parser.parse_args(argv)
    settings = SoakSettings(uploads=args.uploads, max_size=parse_size(args.max_size),
                            part_size=parse_size(args.part_size),
                            concurrency=args.concurrency, rate=args.rate, seed=args.seed,
                            after_each=_rgw_gc(args.rgw_gc) if args.rgw_gc else None)
    for name, value in (("AWS_ACCESS_KEY_ID", "streamify-test"),
                        ("AWS_SECRET_ACCESS_KEY", "streamify-test-secret"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    with contextlib.ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(_moto())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        running = stack.enter_context(open_stack(endpoint))
        ledger = run_soak(running, settings, workdir, report=print)
    print(ledger.summary())
    return 1 if ledger.problems else 0


if __name__ == "__main__":
    sys.exit(main())
