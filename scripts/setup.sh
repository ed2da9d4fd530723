#!/usr/bin/env bash
# Creates .venv (if needed) and installs Streamify with the given extras, pinned by
# constraints.txt. Usage: bash scripts/setup.sh server,dev
#
# Rerunning it is quiet and quick: .venv/streamify-setup.stamp records the hash of
# pyproject.toml and constraints.txt and the extras installed, and pip runs again only
# when one of them changed or an extra is asked for that is not installed yet (the extras
# installed before are kept). STREAMIFY_VENV names another virtualenv directory.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${STREAMIFY_VENV:-.venv}
stamp="$venv/streamify-setup.stamp"

# "a,b" -> "a,b" sorted, without duplicates or empty names.
sorted_extras() { tr ', ' '\n\n' <<<"$*" | sed '/^$/d' | sort -u | paste -sd, -; }

wanted=$(sorted_extras "${1:-server}")
inputs=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
had_inputs="" had_extras=""
if [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then
    read -r had_inputs had_extras <"$stamp" || true
fi
extras=$(sorted_extras "$wanted,$had_extras")
if [ "$inputs" = "$had_inputs" ] && [ "$extras" = "$(sorted_extras "$had_extras")" ]; then
    exit 0  # installed already, from these very files
fi

pip_install() {
    # setuptools explains editable installs in a boxed warning on every install; pip
    # passes it on as a UserWarning starting "Editable installation", filtered here. Some
    # machines' pip configuration names local package folders that do not exist; pip warns
    # about each one on every run. Those lines are noise; everything else shows.
    "$venv/bin/python" -W "ignore:Editable installation:UserWarning" -m pip install \
        --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    pip_install --upgrade pip
fi
rm -f "$stamp"
pip_install -c constraints.txt -e ".${extras:+[$extras]}"
echo "$inputs $extras" >"$stamp"
