#!/usr/bin/env bash
# The fault suite.
#   bash scripts/faults.sh           the short run, as in CI: every test in tests/faults
#                                    (moto on loopback; the radosgw cases too when
#                                    S3_ENDPOINT_URL is set), the soak summary printed
#   bash scripts/faults.sh --soak [options]
#                                    the long soak by hand: python -m tests.faults, 50
#                                    uploads of 0 to 128 MiB against radosgw
#                                    (source /tmp/rgw.env first) unless options say else;
#                                    the long soak of the README's reliability section:
#                                    --max-size 512MiB --part-size 8MiB --concurrency 4
#                                    --endpoint "$S3_ENDPOINT_URL"
#                                    --rgw-gc /tmp/rgw/cluster/ceph.conf
#                                    (see python -m tests.faults --help)
# Both take the heavy-job lock, so they never run beside another heavy job.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=(flock /tmp/streamify-heavy.lock)
if [ "${1:-}" = "--soak" ]; then
    shift
    if [ $# -eq 0 ]; then
        set -- --uploads 50 --max-size 128MiB --part-size 8MiB --concurrency 4 \
            ${S3_ENDPOINT_URL:+--endpoint "$S3_ENDPOINT_URL"}
    fi
    exec "${lock[@]}" .venv/bin/python -m tests.faults "$@"
fi
exec "${lock[@]}" .venv/bin/pytest tests/faults -q -rs -s -p no:cacheprovider "$@"
