#!/usr/bin/env bash
# Build the Uppy test page: install the pinned packages (npm ci, from package-lock.json) and
# bundle the page with esbuild into tests/browser/uppy/dist/ (index.html + uppy-page.js),
# the directory the browser tests serve at /ui/.
# Needs Node 18+ and npm, and the npm registry (or a warm npm cache).
set -euo pipefail
cd "$(dirname "$0")/uppy"
npm ci --no-audit --no-fund --loglevel=error
rm -rf dist
npm run --silent build
echo "built $(pwd)/dist"
