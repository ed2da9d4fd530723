#!/usr/bin/env bash
# The fault suite.
#   bash scripts/faults.sh           the short run, as in CI: every test in tests/faults
#                                    (moto on loopback; the radosgw cases too when
#                                    S3_ENDPOINT_URL is set), the soak summary printed
#   bash scripts/faults.sh --soak [options]
#                                    the long soak by hand: python -m tests.faults, 50
#                                    uploads of 0 to 512 MiB, part size 8 MiB, 4 at a time,
#                                    against radosgw (source /tmp/rgw.env first) with its
#                                    garbage collection after each upload when its
#                                    RGW_CONF (default /tmp/rgw/cluster/ceph.conf) exists,
#                                    or against moto without S3_ENDPOINT_URL; options
#                                    replace all of these (python -m tests.faults --help)
# Both take the heavy-job lock, so they never run beside another heavy job.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=(flock /tmp/streamify-heavy.lock)
if [ "${1:-}" = "--soak" ]; then
    shift
    if [ $# -eq 0 ]; then
        set -- --uploads 50 --max-size 512MiB --part-size 8MiB --concurrency 4
        if [ -n "${S3_ENDPOINT_URL:-}" ]; then
            set -- "$@" --endpoint "$S3_ENDPOINT_URL"
            conf=${RGW_CONF:-/tmp/rgw/cluster/ceph.conf}
            if [ -f "$conf" ]; then set -- "$@" --rgw-gc "$conf"; fi
        fi
    fi
    exec "${lock[@]}" .venv/bin/python -m tests.faults "$@"
fi
exec "${lock[@]}" .venv/bin/pytest tests/faults -q -rs -s -p no:cacheprovider "$@"
