"""The README's list of ``streamify upload`` options gives the defaults the command has."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from streamify.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("option", ["--part-size", "--concurrency", "--jobs"])
def test_the_readme_states_the_upload_defaults(option: str) -> None:
    command = cli.get_command(click.Context(cli), "upload")
    assert command is not None
    [param] = [p for p in command.params if option in p.opts]
    # "`--jobs` (4 files..." or "`--jobs 4`": the first value the README gives the option.
    stated = re.search(rf"`{option}(?: |` \()(\w+)", README.read_text())
    assert stated is not None, f"the README does not mention {option}"
    assert stated.group(1) == str(param.default)
