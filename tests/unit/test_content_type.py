"""The content type told from a file's leading bytes, on tiny files whose container headers
are written here byte by byte; the extension only when the bytes say nothing."""

from __future__ import annotations

import struct
from pathlib import Path

import fsspec
import pytest
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from streamify import content_type_of
from streamify._content_type import SNIFF_BYTES


def _ftyp(brand: bytes) -> bytes:
    """An ISO base media file: an ``ftyp`` box (major brand, version, compatible brands)
    and an empty ``mdat``."""
    body = brand + b"\x00\x00\x02\x00" + brand + b"isom"
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + struct.pack(">I", 8) + b"mdat"


def _ebml(doc_type: bytes) -> bytes:
    """An EBML header (version, read version, max ID/size lengths, DocType) and a Segment."""
    elements = (b"\x42\x86\x81\x01" + b"\x42\xf7\x81\x01" + b"\x42\xf2\x81\x04"
                + b"\x42\xf3\x81\x08" + b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
                + b"\x42\x87\x81\x04" + b"\x42\x85\x81\x02")
    return (b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements
            + b"\x18\x53\x80\x67\x01\x00\x00\x00\x00\x00\x00\x00")


def _transport_stream(packets: int) -> bytes:
    """``packets`` MPEG-TS packets: sync byte, PID 0x1FFF (null packets), 184 bytes of fill."""
    return b"".join(b"\x47\x1f\xff\x10" + b"\xff" * 184 for _ in range(packets))


def _riff(form: bytes) -> bytes:
    chunk = b"LIST" + struct.pack("<I", 4) + b"hdrl"
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + form + chunk


CASES = {
    "mp4 (isom)": (_ftyp(b"isom"), "video/mp4"),
    "mp4 (mp41)": (_ftyp(b"mp41"), "video/mp4"),
    "mp4 (mp42)": (_ftyp(b"mp42"), "video/mp4"),
    "mov (qt)": (_ftyp(b"qt  "), "video/quicktime"),
    "m4v": (_ftyp(b"M4V "), "video/x-m4v"),
    "m4a": (_ftyp(b"M4A "), "audio/mp4"),
    "matroska": (_ebml(b"matroska"), "video/x-matroska"),
    "webm": (_ebml(b"webm"), "video/webm"),
    "mpeg-ts": (_transport_stream(30), "video/mp2t"),
    "avi": (_riff(b"AVI "), "video/x-msvideo"),
    "wav": (_riff(b"WAVE"), "audio/wav"),
    "mp3 (ID3)": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 10, "audio/mpeg"),
    "mp3 (frame)": (b"\xff\xfb\x90\x64" + b"\x00" * 400, "audio/mpeg"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_leading_bytes_tell_the_type_whatever_the_name(name: str, tmp_path: Path) -> None:
    data, expected = CASES[name]
    path = tmp_path / "clip.bin"  # an extension that says nothing, so the bytes must
    path.write_bytes(data + b"\x00" * 1000)

    assert content_type_of(str(path)) == expected


def test_a_transport_stream_needs_its_sync_byte_every_188_bytes(tmp_path: Path) -> None:
    broken = bytearray(_transport_stream(30))
    broken[188 * 2] = 0x00
    path = tmp_path / "clip.bin"
    path.write_bytes(bytes(broken))

    assert content_type_of(str(path)) == "application/octet-stream"


def test_the_extension_decides_when_the_bytes_say_nothing(tmp_path: Path) -> None:
    for name, expected in (("clip.mp4", "video/mp4"), ("notes.txt", "text/plain"),
                           ("blob.unknownext", "application/octet-stream")):
        path = tmp_path / name
        path.write_bytes(b"nothing to recognise here" * 10)
        assert content_type_of(str(path)) == expected, name
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    assert content_type_of(str(empty)) == "video/webm"


def test_the_bytes_win_over_a_misleading_extension(tmp_path: Path) -> None:
    path = tmp_path / "really-webm.mp4"
    path.write_bytes(_ebml(b"webm"))

    assert content_type_of(str(path)) == "video/webm"


class _RangeFile(AbstractBufferedFile):  # type: ignore[misc]
    def _fetch_range(self, start: int, end: int) -> bytes:
        self.fs.fetched.append((start, end))
        data: bytes = self.fs.data[start:end]
        return data


class _RangeFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """A remote store in miniature: every read is a ranged fetch, recorded."""

    protocol = "rangetest"
    data = b""
    fetched: list[tuple[int, int]] = []

    def info(self, path: str, **kwargs: object) -> dict[str, object]:
        return {"name": path, "size": len(self.data), "type": "file"}

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              **kwargs: object) -> _RangeFile:
        return _RangeFile(self, path, mode, block_size=1024, cache_type="none")


def test_a_remote_source_is_read_only_for_its_first_bytes() -> None:
    _RangeFileSystem.data = _ftyp(b"qt  ") + b"\x00" * (8 * 1024 * 1024)
    fetched: list[tuple[int, int]] = []
    _RangeFileSystem.fetched = fetched
    fsspec.register_implementation("rangetest", _RangeFileSystem, clobber=True)

    assert content_type_of("rangetest://big.mov") == "video/quicktime"
    assert fetched and max(end for _, end in fetched) <= SNIFF_BYTES, fetched
