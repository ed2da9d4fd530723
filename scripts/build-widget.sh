#!/usr/bin/env bash
# Rebuild the notebook widgets' browser module: bundle streamify_notebook/js/*.js with
# esbuild into streamify_notebook/widget.js (the one file anywidget loads).
#   --check   build into a temporary file and fail if it differs from the committed bundle
#             (CI runs this, so the bundle always matches its sources).
# Needs Node 18+; esbuild comes from web/'s pinned packages (npm ci there when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d web/node_modules/esbuild ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
committed=streamify_notebook/widget.js
if [ "${1:-}" = "--check" ]; then
    fresh=$(mktemp --suffix=.js)
    trap 'rm -f "$fresh"' EXIT
    node streamify_notebook/js/build.mjs "$fresh" >/dev/null
    if ! cmp -s "$fresh" "$committed"; then
        diff -u "$committed" "$fresh" | head -40 || true
        echo "notebook widgets: $committed does not match streamify_notebook/js/; run" \
             "scripts/build-widget.sh and commit it" >&2
        exit 1
    fi
    echo "notebook widgets: $committed matches streamify_notebook/js/"
else
    node streamify_notebook/js/build.mjs
fi
