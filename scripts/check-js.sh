#!/usr/bin/env bash
# ESLint and the unit tests of the project's browser code: the upload page (web/src) and
# the notebook widgets (streamify_notebook/js), with the packages pinned in
# web/package-lock.json (`npm ci`; needs the npm registry or a warm npm cache).
# Without node 20.19+ and npm it says why and skips (exit 0): they are not needed to run
# Streamify, only to check its JavaScript.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "JavaScript lint and tests: skipped, node and npm are not installed" \
         "(Debian: apt-get install nodejs npm)"
    exit 0
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
              process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "JavaScript lint and tests: skipped, node $(node --version) is older than" \
         "ESLint needs (20.19)"
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent lint
npm test --silent
