#!/usr/bin/env bash
# Sets up Streamify with its test tools, then runs ruff, mypy, the browser code's ESLint and
# unit tests (web/ and streamify_notebook/js/, with node's test runner) and the whole test
# suite, in two lanes. Tiers that need a real S3 server (S3_ENDPOINT_URL) or Debian
# chromium skip with the reason printed when those are absent, and so do the JavaScript
# checks without node; .ci/run provides them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh server,dev,notebook,airflow,video,celery,lineage
.venv/bin/ruff check .
.venv/bin/mypy
bash scripts/check-js.sh
# Two lanes (tests/conftest.py): the tests that mostly wait run beside the others.
exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
