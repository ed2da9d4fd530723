"""``import streamify`` and ``streamify --version`` load only what they need.

Checked by the modules a fresh interpreter holds afterwards (not by time): boto3, fsspec,
the service's web stack and moto load when a command or a name needs them.
"""

import subprocess
import sys
from pathlib import Path

HEAVY = ("boto3", "botocore", "fsspec", "fastapi", "uvicorn", "moto", "s3fs", "urllib3", "tqdm")


def _loaded_after(code: str) -> set[str]:
    probe = (f"{code}\nimport sys\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    return set(out[-2].split())


def test_import_streamify_loads_no_dependency() -> None:
    assert _loaded_after("import streamify").isdisjoint(HEAVY)


def test_version_loads_no_dependency_but_click() -> None:
    code = ("import contextlib\nfrom streamify.cli import main\n"
            "with contextlib.suppress(SystemExit):\n    main(['--version'])")
    assert _loaded_after(code).isdisjoint(HEAVY)


def test_a_public_name_loads_its_module_on_first_use() -> None:
    loaded = _loaded_after("import streamify\nstreamify.S3ControlPlane")
    assert "boto3" in loaded
    assert "fastapi" not in loaded


def test_uploading_a_local_file_loads_no_fsspec(tmp_path: Path) -> None:
    # Only a URL source or a state directory given as a URL needs fsspec.
    (tmp_path / "clip.mp4").write_bytes(b"x" * 1000)
    code = ("import contextlib\nfrom streamify.cli import main\n"
            "with contextlib.suppress(SystemExit):\n"
            "    main(['upload', '--endpoint-url', 'http://127.0.0.1:9', '--no-progress', "
            f"'--state-dir', {str(tmp_path / 'state')!r}, {str(tmp_path / 'clip.mp4')!r}, "
            "'s3://bucket/key'])")
    loaded = _loaded_after(code)
    assert "botocore" in loaded  # it got as far as the S3 client
    assert "fsspec" not in loaded
