#!/usr/bin/env bash
# Builds the API service's container image, localhost/streamify:latest, from Containerfile.
# Safe to rerun: it sets up podman only where that is missing, and makes the base image
# (Debian bookworm with python3, from this machine's apt sources, by mmdebstrap) only when
# localhost/bookworm-py:base is absent. Needs Debian podman, runc and mmdebstrap, as root.
#
# With STREAMIFY_IMAGE_BUILD_STATUS=FILE it writes FILE at the end: "ok", or
# "failed: <reason>" (CI builds in the background while the other tests run; the
# container tests wait for that file).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=localhost/bookworm-py:base
IMAGE=localhost/streamify:latest
status_file=${STREAMIFY_IMAGE_BUILD_STATUS:-}
step="starting"

report() {
    local code=$?
    if [ -n "$status_file" ]; then
        if [ "$code" = 0 ]; then
            echo ok >"$status_file.tmp"
        else
            echo "failed: $step (exit $code; see the build's output)" >"$status_file.tmp"
        fi
        mv "$status_file.tmp" "$status_file"
    fi
}
trap report EXIT
if [ -n "$status_file" ]; then rm -f "$status_file"; fi

seconds() { date +%s; }

step="podman, runc or mmdebstrap missing (apt-get install podman runc mmdebstrap)"
command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null

# crun refuses this machine's cgroups, and root here cannot raise ulimits beyond these.
step="setting up /etc/containers/containers.conf"
if [ ! -f /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
    echo "wrote /etc/containers/containers.conf (runc, ulimits)"
fi

if ! podman image exists "$BASE"; then
    step="building the base image $BASE with mmdebstrap"
    work=$(mktemp -d /var/tmp/streamify-base.XXXXXX)
    start=$(seconds)
    # Merged /usr by symlinks (not the usrmerge package, which brings perl along) and
    # no documentation, manuals or translations (the licences stay): 130 MB, not 225.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$work/base.tar" >"$work/mmdebstrap.log" 2>&1 \
        || { cat "$work/mmdebstrap.log" >&2; exit 1; }
    podman import --quiet "$work/base.tar" "$BASE" >/dev/null
    rm -rf "$work"
    echo "base image $BASE built in $(( $(seconds) - start )) s"
fi

# pip in the build uses this machine's package index and CA bundle (a TLS proxy may stand
# between it and the index): the bundle is mounted and named by PIP_CERT.
step="building $IMAGE"
cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
cert=${cert:-/etc/ssl/certs/ca-certificates.crt}
index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
old=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
start=$(seconds)
podman build --format docker --layers=false --tag "$IMAGE" \
    --volume "$cert:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt \
    --build-arg "PIP_INDEX_URL=$index" --file Containerfile .
new=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
    podman rmi "$old" >/dev/null 2>&1 || true  # the image this one replaces, unless in use
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE built in $(( $(seconds) - start )) s: $(( size / 1024 / 1024 )) MiB ($size bytes)"
step="done"
