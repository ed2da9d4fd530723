#!/usr/bin/env bash
# The fault suite.
#   bash scripts/faults.sh           the short run, as in CI: every test in tests/faults
#                                    (moto on loopback; the radosgw cases too when
#                                    S3_ENDPOINT_URL is set), the soak summary printed
#   bash scripts/faults.sh --soak [options]
#                                    the long soak by hand: python -m tests.faults, for
#                                    seeds 1,2,3, 50 uploads each of 0 to 512 MiB, part size
#                                    8 MiB, 4 at a time, through every front end (CLI,
#                                    Python API, fsspec stream, notebook Uploader, Airflow
#                                    operator) under network, process, data, storage
#                                    restart and API service restart faults; on a private
#                                    radosgw (../shared/s3/rgw-up.sh, wiped afterwards)
#                                    when radosgw is installed, else against
#                                    S3_ENDPOINT_URL (its garbage collection after each
#                                    upload when RGW_CONF, default
#                                    /tmp/rgw/cluster/ceph.conf, exists), else moto.
#                                    Options are added to these (python -m tests.faults
#                                    --help), e.g. --seeds 4,5 or --uploads 20. It prints
#                                    each seed's summary, its front end x fault kind
#                                    counts, and the per-seed table.
# Both take the heavy-job lock, so they never run beside another heavy job.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=(flock /tmp/streamify-heavy.lock)
if [ "${1:-}" = "--soak" ]; then
    shift
    defaults=(--uploads 50 --max-size 512MiB --part-size 8MiB --concurrency 4 --seeds 1,2,3)
    case " $* " in
        *" --endpoint"*|*" --private-rgw "*) ;;
        *)
            if [ -f ../shared/s3/rgw-up.sh ] && command -v radosgw >/dev/null; then
                defaults+=(--private-rgw)
            elif [ -n "${S3_ENDPOINT_URL:-}" ]; then
                defaults+=(--endpoint "$S3_ENDPOINT_URL")
                conf=${RGW_CONF:-/tmp/rgw/cluster/ceph.conf}
                if [ -f "$conf" ]; then defaults+=(--rgw-gc "$conf"); fi
            fi
            ;;
    esac
    exec "${lock[@]}" .venv/bin/python -m tests.faults "${defaults[@]}" "$@"
fi
exec "${lock[@]}" .venv/bin/pytest tests/faults -q -rs -s -p no:cacheprovider "$@"
