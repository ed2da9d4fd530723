#!/usr/bin/env bash
# Creates .venv (if needed) and installs Streamify with the given extras, pinned by
# constraints.txt. Usage: bash scripts/setup.sh server,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-server}
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e ".[${extras}]"
