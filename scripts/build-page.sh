#!/usr/bin/env bash
# Rebuild the upload page that `streamify serve` serves at / and /ui/: install the pinned
# packages (npm ci, from web/package-lock.json) and bundle web/src with esbuild into
# core/streamify/server/static/ (index.html, page.js, page.css; no CDN, works offline).
#   --check   build into a temporary directory and fail if it differs from the committed
#             bundle (CI runs this, so the bundle always matches its sources and the lock).
# Needs Node 18+ and npm, and the npm registry (or a warm npm cache).
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --no-audit --no-fund --loglevel=error
committed=../core/streamify/server/static
if [ "${1:-}" = "--check" ]; then
    fresh=$(mktemp -d)
    trap 'rm -rf "$fresh"' EXIT
    node build.mjs "$fresh" >/dev/null
    if ! diff -r "$fresh" "$committed" >/dev/null; then
        diff -rq "$fresh" "$committed" || true
        echo "upload page: the committed bundle in core/streamify/server/static/ does not" \
             "match web/ and its package-lock.json; run scripts/build-page.sh and commit it" >&2
        exit 1
    fi
    echo "upload page: the committed bundle matches web/ and its package-lock.json"
else
    node build.mjs
fi
