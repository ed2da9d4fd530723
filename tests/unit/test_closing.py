"""A source gives its descriptor back once: closing twice is harmless, and one dropped
unclosed warns and closes, as an unclosed file does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamify import LocalFileSource


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_closing_a_local_source_twice_leaves_a_file_opened_in_between_intact(
        tmp_path: Path) -> None:
    (tmp_path / "video.bin").write_bytes(b"frames")
    source = LocalFileSource(tmp_path / "video.bin")
    source.close()
    # The system hands out the lowest free descriptor: the one the source just gave back.
    other = os.open(tmp_path / "notes.txt", os.O_WRONLY | os.O_CREAT)
    try:
        source.close()
        assert os.write(other, b"kept") == 4
    finally:
        os.close(other)
    assert (tmp_path / "notes.txt").read_bytes() == b"kept"


def test_a_local_source_dropped_unclosed_warns_and_gives_its_descriptor_back(
        tmp_path: Path) -> None:
    (tmp_path / "video.bin").write_bytes(b"frames")
    before = open_descriptors()
    with pytest.warns(ResourceWarning, match=r"unclosed LocalFileSource\(.*video\.bin'\)"):
        LocalFileSource(tmp_path / "video.bin")  # dropped at once: nothing refers to it
    assert open_descriptors() == before
