"""The content type of a file told from its leading bytes, else from its name.

Containers are recognised by their signatures: ISO base media (MP4, M4V, M4A, QuickTime
MOV, 3GP) by the ``ftyp`` box's brand, Matroska and WebM by the EBML header's DocType,
MPEG transport streams by their 0x47 sync byte every 188 bytes, AVI and WAV by their RIFF
form type, and MP3, PNG, JPEG, GIF and PDF by their magic numbers. What has none of these
gets the type ``mimetypes`` gives its extension, else ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import os

import fsspec

from ._source import file_name

__all__ = ["DEFAULT_CONTENT_TYPE", "SNIFF_BYTES", "content_type_of", "sniff_content_type"]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
SNIFF_BYTES = 4096
"""How much of a file is read to tell its type: enough for every signature above."""

_TS_PACKET = 188
_FTYP_BRANDS = {
    b"qt  ": "video/quicktime",
    b"M4V ": "video/x-m4v", b"M4VH": "video/x-m4v", b"M4VP": "video/x-m4v",
    b"M4A ": "audio/mp4", b"M4B ": "audio/mp4",
    b"3gp4": "video/3gpp", b"3gp5": "video/3gpp", b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
)
_RIFF_FORMS = {b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav", b"WEBP": "image/webp"}


def sniff_content_type(head: bytes) -> str | None:
    """The type the leading bytes ``head`` show, or ``None`` when they show none."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml_type(head)
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] in _RIFF_FORMS:
        return _RIFF_FORMS[head[8:12]]
    if _is_transport_stream(head):
        return "video/mp2t"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "video/mpeg"
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # an MPEG audio frame header with no ID3 tag before it
    return None


def content_type_of(source: str | os.PathLike[str], head: bytes | None = None) -> str:
    """The content type of ``source`` (a path or fsspec URL): from its first
    :data:`SNIFF_BYTES` bytes (read here unless given as ``head``), else its extension,
    else ``application/octet-stream``."""
    if head is None:
        with fsspec.open(os.fspath(source), "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    sniffed = sniff_content_type(head)
    if sniffed is not None:
        return sniffed
    guessed, _ = mimetypes.guess_type(file_name(source))
    return guessed or DEFAULT_CONTENT_TYPE


def _ebml_type(head: bytes) -> str:
    """WebM or Matroska, by the EBML header's DocType element (ID 0x4282)."""
    at = head.find(b"\x42\x82")
    if at >= 0 and at + 3 <= len(head):
        size_byte = head[at + 2]
        if size_byte & 0x80:  # a one-byte size, as every muxer writes it
            doc_type = head[at + 3:at + 3 + (size_byte & 0x7F)].rstrip(b"\x00")
            if doc_type == b"webm":
                return "video/webm"
    return "video/x-matroska"


def _is_transport_stream(head: bytes) -> bool:
    """At least three packets, each starting with the 0x47 sync byte."""
    packets = len(head) // _TS_PACKET
    return packets >= 3 and all(head[i * _TS_PACKET] == 0x47 for i in range(min(packets, 20)))
