"""The check after CompleteMultipartUpload: an assembled object that is not what was sent.

The store is moto, real over HTTP; only the answer of ``complete`` is altered, by a thin
subclass of the real ``S3ControlPlane``, as a store that assembled the parts wrongly (or a
proxy that rewrote the answer) would report it. The README promises ``IntegrityError``,
exit 10, and the object left in place for the user to look at.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import streamify
from streamify import (
    Destination,
    IntegrityError,
    ObjectInfo,
    S3ControlPlane,
    UploadedPart,
    _s3control,
)
from streamify.cli import main

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024
SIZE = 2 * 5 * MiB + 321

Misreport = Callable[[ObjectInfo], ObjectInfo]


def _one_byte_short(info: ObjectInfo) -> ObjectInfo:
    return dataclasses.replace(info, size=info.size - 1)


def _another_composite_etag(info: ObjectInfo) -> ObjectInfo:
    # Still a composite ETag ("<md5 of the part MD5s>-<count>") of as many parts, so only
    # its digest tells it apart.
    digest, _, count = info.etag.partition("-")
    assert count, f"moto answered a non-composite ETag {info.etag!r}"
    return dataclasses.replace(info, etag=f"{hashlib.md5(digest.encode()).hexdigest()}-{count}")


MISREPORTS = [pytest.param(_one_byte_short, id="wrong-size"),
              pytest.param(_another_composite_etag, id="wrong-etag")]


class MisreportingControlPlane(S3ControlPlane):
    """A real control plane whose ``complete`` answers what ``misreport`` makes of the
    object S3 really assembled. The command makes its own control plane, so the one to
    use is a class setting."""

    misreport: Misreport | None = None

    def __init__(self, *, misreport: Misreport | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        chosen = misreport or type(self).misreport
        assert chosen is not None
        self._misreport: Misreport = chosen
        self.completed = 0

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        info = super().complete(destination, upload_id, parts)
        self.completed += 1
        return self._misreport(info)


def _assert_left_in_place(bucket: Bucket, key: str, data: bytes) -> None:
    assert hashlib.sha256(bucket.read(key)).hexdigest() == hashlib.sha256(data).hexdigest()
    assert bucket.open_uploads() == []


@pytest.mark.parametrize("misreport", MISREPORTS)
def test_a_file_whose_object_does_not_match_is_an_integrity_error(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, misreport: Misreport) -> None:
    path = make_file(tmp_path / "clip.mp4", SIZE)
    plane = MisreportingControlPlane(misreport=misreport, endpoint_url=moto_bucket.endpoint)
    with pytest.raises(IntegrityError) as caught:
        streamify.upload(path, moto_bucket.url("clip.mp4"), control=plane, part_size="5MiB")
    plane.close()
    assert plane.completed == 1
    assert caught.value.exit_code == 10
    assert str(path) in str(caught.value) and "left in place" in str(caught.value)
    _assert_left_in_place(moto_bucket, "clip.mp4", path.read_bytes())
    # Assembled, so nothing is left to resume: no state points at the finished upload.
    assert streamify.StateStore(state_dir).all() == []


@pytest.mark.parametrize("misreport", MISREPORTS)
def test_a_stream_whose_object_does_not_match_is_an_integrity_error(
        moto_bucket: Bucket, misreport: Misreport) -> None:
    data = b"".join(i.to_bytes(4, "big") for i in range(SIZE // 4))
    chunks = (data[i:i + MiB] for i in range(0, len(data), MiB))
    plane = MisreportingControlPlane(misreport=misreport, endpoint_url=moto_bucket.endpoint)
    with pytest.raises(IntegrityError) as caught:
        streamify.upload_stream(chunks, moto_bucket.url("piped.bin"), control=plane,
                                part_size="5MiB")
    plane.close()
    assert plane.completed == 1
    assert caught.value.exit_code == 10
    assert "left in place" in str(caught.value)
    _assert_left_in_place(moto_bucket, "piped.bin", data)


@pytest.mark.parametrize("misreport", MISREPORTS)
def test_the_command_exits_10_and_says_the_object_was_left(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str, misreport: Misreport,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_file(tmp_path / "clip.mp4", SIZE)
    monkeypatch.setattr(MisreportingControlPlane, "misreport", staticmethod(misreport))
    monkeypatch.setattr(_s3control, "S3ControlPlane", MisreportingControlPlane)
    monkeypatch.delenv("STREAMIFY_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["upload", str(path), moto_bucket.url("clip.mp4"), "--endpoint-url",
              moto_bucket.endpoint, "--part-size", "5MiB", "--no-progress"])
    assert exited.value.code == 10
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("streamify: error: ") and "left in place" in line, line
    _assert_left_in_place(moto_bucket, "clip.mp4", path.read_bytes())
