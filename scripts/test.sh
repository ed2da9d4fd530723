#!/usr/bin/env bash
# Sets up Streamify with its test tools, then runs ruff, mypy and the whole test suite.
# Tiers that need a real S3 server (S3_ENDPOINT_URL) or Debian chromium skip with the
# reason printed when those are absent; .ci/run provides both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh server,dev,notebook,airflow
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
