#!/usr/bin/env bash
# The upload benchmarks in one command: installs what they need, brings up S3, takes the
# machine's benchmark lock and runs throughput.py (one file, every contender interleaved)
# and many_files.py (a directory of many files), companion.py (the API service beside
# Uppy's Companion, with Node.js), then airflow_mapped.py (a mapped Airflow DAG beside the
# Amazon provider's, with the airflow extra); results land in
# benchmarks/results/ (markdown, PNG chart, every run as JSON lines), and summary.py
# rewrites the README's summary table from them.
#
#   bash benchmarks/run.sh
#
# What it brings up:
# - the virtualenv with the API service (scripts/setup.sh server) and the contenders only
#   the benchmarks use (benchmarks/requirements.txt: obstore, the AWS CRT client,
#   matplotlib), pinned by constraints.txt;
# - rclone (Debian package) when it is missing;
# - S3: $S3_ENDPOINT_URL and the AWS credentials if set; else the radosgw whose
#   credentials are in /tmp/rgw.env; else a fresh one (../shared/s3/rgw-up.sh).
#   Against radosgw every object is deleted after its upload and its garbage collector
#   runs before the next one (memstore keeps deleted data in RAM until then).
#
# Settings (environment): BENCH_SIZES (1GiB,4GiB), BENCH_ROUNDS (3), BENCH_SETS
# (10000x100KiB,1000x1MiB,50x64MiB), BENCH_MANY_ONLY (many_files contenders, default
# all), BENCH_AIRFLOW_FILES (500; 0 skips airflow_mapped.py),
# BENCH_COMPANION (1; 0 skips companion.py), BENCH_COMPANION_SECONDS (5),
# BENCH_ONLY (throughput contenders, default all), BENCH_STOP_AT
# (UTC HH:MM: no upload starts after it), BENCH_OUT (benchmarks/results), BENCH_LOCK
# (/tmp/streamify-heavy.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=${BENCH_LOCK:-/tmp/streamify-heavy.lock}
if [ -z "${STREAMIFY_BENCH_LOCKED:-}" ]; then
    # One heavy job at a time on this machine: others' runs would distort these numbers.
    exec env STREAMIFY_BENCH_LOCKED=1 flock "$lock" bash "$0" "$@"
fi

bash scripts/setup.sh server
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
    -r benchmarks/requirements.txt 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
if ! command -v rclone >/dev/null; then
    apt-get update -qq && apt-get install -y -qq rclone >/dev/null
fi

rgw_dir=${RGW_DIR:-/tmp/rgw}
if [ -z "${S3_ENDPOINT_URL:-}" ]; then
    if [ -f /tmp/rgw.env ]; then
        # shellcheck disable=SC1091
        source /tmp/rgw.env
    else
        eval "$(bash ../shared/s3/rgw-up.sh | tail -3)"
    fi
fi
between=""
if [ -f "$rgw_dir/cluster/ceph.conf" ] && command -v radosgw-admin >/dev/null; then
    between="radosgw-admin -c $rgw_dir/cluster/ceph.conf gc process --include-all"
fi

# One version of the core for the whole run: the children import a copy taken now, so
# edits to the work tree during the run (it takes minutes) cannot mix two versions.
snapshot=$(mktemp -d /tmp/streamify-bench-core.XXXXXX)
trap 'rm -rf "$snapshot"' EXIT
cp -r core/streamify "$snapshot/"
find "$snapshot" -name __pycache__ -prune -exec rm -rf {} +
changed=$(git status --porcelain -- core | awk '{print $2}' | paste -sd, - || true)
digest=$(cd "$snapshot" && find streamify -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
export BENCH_CORE="$(git rev-parse --short HEAD)${changed:+ with uncommitted changes in $changed}, copied at $(date -u +%H:%M) UTC (sha256 of its files $digest)"
export PYTHONPATH="$snapshot${PYTHONPATH:+:$PYTHONPATH}"
out=${BENCH_OUT:-benchmarks/results}
mkdir -p "$out"
# What was measured, exactly: the commit plus these uncommitted changes (empty: none).
git diff HEAD -- core >"$out/core-uncommitted.diff"

settings=$(env | grep '^BENCH_' | grep -v '^BENCH_CORE=' | sort | tr '\n' ' ' || true)
export BENCH_RUN_BY="${settings}bash benchmarks/run.sh"
common=(--between "$between" --stop-at "${BENCH_STOP_AT:-}" --rounds "${BENCH_ROUNDS:-3}"
        --out "$out")
only=()
if [ -n "${BENCH_ONLY:-}" ]; then only=(--only "$BENCH_ONLY"); fi
.venv/bin/python benchmarks/throughput.py --sizes "${BENCH_SIZES:-1GiB,4GiB}" "${only[@]}" \
    "${common[@]}"
many_only=()
if [ -n "${BENCH_MANY_ONLY:-}" ]; then many_only=(--only "$BENCH_MANY_ONLY"); fi
.venv/bin/python benchmarks/many_files.py \
    --sets "${BENCH_SETS:-10000x100KiB,1000x1MiB,50x64MiB}" "${many_only[@]}" "${common[@]}"
# The API service beside Uppy's Companion (@uppy/companion from npm, pinned in
# benchmarks/companion/package-lock.json): needs Node.js 20 and npm.
if [ "${BENCH_COMPANION:-1}" != 0 ]; then
    if command -v npm >/dev/null; then
        (cd benchmarks/companion && npm ci --no-audit --no-fund --silent)
        .venv/bin/python benchmarks/companion.py --out "$out" \
            --seconds "${BENCH_COMPANION_SECONDS:-5}"
    else
        echo "companion.py skipped: needs Node.js 20 and npm (apt-get install nodejs npm)" >&2
    fi
fi
# Mapped ingestion in Airflow needs the airflow and celery extras and redis-server.
if [ "${BENCH_AIRFLOW_FILES:-500}" != 0 ]; then
    if .venv/bin/python -c "import airflow.providers.amazon, airflow.providers.celery" \
            2>/dev/null && [ -x /usr/bin/redis-server ]; then
        .venv/bin/python benchmarks/airflow_mapped.py --files "${BENCH_AIRFLOW_FILES:-500}" \
            --between "$between" --out "$out"
    else
        echo "airflow_mapped.py skipped: needs bash scripts/setup.sh server,airflow,celery" \
            "and redis-server (apt-get install redis-server)" >&2
    fi
fi
# Last, the README's summary table from what the benchmarks above wrote.
.venv/bin/python benchmarks/summary.py --results "$out"
