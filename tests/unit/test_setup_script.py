"""``scripts/setup.sh`` decides when to install: only when pyproject.toml or
constraints.txt changed, or an extra is asked for that is not installed yet.

Its virtualenv here (``STREAMIFY_VENV``) holds a ``python`` that records how it was called
instead of installing, so these run in milliseconds; the installs themselves are what
``scripts/test.sh`` and ``.ci/run`` do on every run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDER = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls"
"""


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(RECORDER)
    python.chmod(0o755)
    return venv


def _setup(venv: Path, extras: str) -> list[str]:
    """Run the script; return the calls it made to the virtualenv's python."""
    calls = venv / "bin" / "calls"
    calls.unlink(missing_ok=True)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), extras],
                          env={"PATH": "/usr/bin:/bin", "STREAMIFY_VENV": str(venv)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    return calls.read_text().splitlines() if calls.exists() else []


def test_installs_once_then_does_nothing_until_something_changes(tmp_path: Path) -> None:
    venv = _venv(tmp_path)
    [install] = _setup(venv, "server")
    assert install.endswith("-c constraints.txt -e .[server]")
    # setuptools' boxed editable-install warning is filtered out of pip's output.
    assert install.startswith("-W ignore:Editable installation:UserWarning -m pip install")

    assert _setup(venv, "server") == []
    assert _setup(venv, "") == []  # the default extra, installed already

    [more] = _setup(venv, "dev")  # a new extra: installed beside the ones there
    assert more.endswith("-e .[dev,server]")
    assert _setup(venv, "server,dev") == []

    stamp = venv / "streamify-setup.stamp"
    stamp.write_text("0" * 64 + " dev,server\n")  # as if constraints.txt had changed
    [again] = _setup(venv, "server")
    assert again.endswith("-e .[dev,server]")
    assert _setup(venv, "server") == []
