#!/usr/bin/env bash
# Sets up Streamify, then runs the main job on the embedded default: an S3 emulator on
# loopback, a generated 300 MiB video, an upload killed halfway, resumed, and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh server
exec "${STREAMIFY_VENV:-.venv}/bin/streamify" demo "$@"
