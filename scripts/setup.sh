#!/usr/bin/env bash
# Creates .venv (if needed) and installs Streamify with the given extras, pinned by
# constraints.txt. Usage: bash scripts/setup.sh server,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-server}
pip_install() {
    # Some machines' pip configuration names local package folders that do not exist;
    # pip warns about each one on every run. Those lines are noise; everything else shows.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}
python3 -m venv .venv
pip_install --upgrade pip
pip_install -c constraints.txt -e ".[${extras}]"
