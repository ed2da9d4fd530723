"""Video facts: what FFmpeg's probe says about a source, before any byte of it is sent.

``probe_video`` opens a local path or any fsspec URL through :func:`open_source` and hands
it to FFmpeg's demuxer (PyAV, the ``video`` extra) as a file object, so a remote video is
read with ranged requests and only where the demuxer asks: the header, the index (an MP4's
``moov``, wherever it is) and the few packets ``avformat_find_stream_info`` decodes, never
the whole file. A source FFmpeg cannot read as a video, or that holds no video stream,
raises :class:`NotAVideoError`.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, SourceError
from ._source import Source, open_source

if TYPE_CHECKING:
    from av.container import InputContainer

__all__ = ["NotAVideoError", "SourceReader", "VideoFacts", "probe_video"]

_MISSING = "reading video facts needs PyAV: pip install 'streamify[video]'"
_BLOCK = 256 * 1024
# FFmpeg's own default; stated so the bound on what a probe reads does not move with it.
_PROBE_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}


class NotAVideoError(SourceError):
    """FFmpeg cannot read the source as a video (not a media file, truncated, no video
    stream)."""


@dataclass(frozen=True, kw_only=True)
class VideoFacts:
    """What FFmpeg's probe says about a video; ``as_dict()`` is JSON-ready."""

    container: str
    """FFmpeg's format name, as ffprobe prints it (``mov,mp4,m4a,3gp,3g2,mj2``,
    ``matroska,webm``)."""
    duration: float | None
    """Seconds, when the container or the stream says."""
    video_codec: str
    width: int
    height: int
    fps: float | None
    """Average frame rate, when known."""
    audio_codec: str | None
    """The first audio stream's codec; ``None`` without audio."""
    bit_rate: int | None
    """Overall bits per second, when the container says or FFmpeg estimates it."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_metadata(self) -> dict[str, str]:
        """Short S3 user-metadata entries (``x-amz-meta-*``; ASCII, far below S3's 2 KB)."""
        entries = {"container": self.container, "codec": self.video_codec,
                   "width": str(self.width), "height": str(self.height)}
        if self.duration is not None:
            entries["duration"] = f"{self.duration:.3f}"
        if self.fps is not None:
            entries["fps"] = f"{self.fps:.3f}".rstrip("0").rstrip(".")
        if self.audio_codec is not None:
            entries["audio"] = self.audio_codec
        return entries


class SourceReader(io.RawIOBase):
    """A seekable, read-only file object over a :class:`Source`; ``bytes_read`` counts
    what it fetched. Reads go to the source in blocks of at least 256 KiB (FFmpeg asks
    for 32 KiB at a time), one block kept."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self._source = source
        self._size = source.size
        self._position = 0
        self._block_start = 0
        self._block = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        start = self._position - self._block_start
        if start < 0 or start + wanted > len(self._block):
            length = min(max(wanted, _BLOCK), self._size - self._position)
            self._block = self._source.read(self._position, length)
            self._block_start, start = self._position, 0
            self.bytes_read += len(self._block)
        chunk = self._block[start:start + wanted]
        view[:len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


def probe_video(location: str | os.PathLike[str] | Source) -> VideoFacts:
    """The video facts of ``location`` (a path, any fsspec URL or an open :class:`Source`,
    which stays open). Raises :class:`NotAVideoError` when FFmpeg cannot read it as a video,
    :class:`ConfigError` when PyAV is not installed."""
    if isinstance(location, str | os.PathLike):
        source = open_source(location)
        try:
            return read_facts(SourceReader(source), source.name)
        finally:
            source.close()
    return read_facts(SourceReader(location), location.name)


def read_facts(reader: io.RawIOBase, name: str) -> VideoFacts:
    """The video facts of the media file ``reader`` reads (named ``name`` in errors)."""
    try:
        import av
    except ImportError as exc:
        raise ConfigError(_MISSING) from exc
    try:
        with av.open(reader, mode="r", options=_PROBE_OPTIONS) as container:
            return _facts(container, name)
    except av.FFmpegError as exc:
        reason = exc.strerror or str(exc)
        raise NotAVideoError(f"{name} is not a video FFmpeg can read ({reason})") from exc


def _facts(container: InputContainer, name: str) -> VideoFacts:
    import av

    pictures = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & pictures]
    if not videos:
        raise NotAVideoError(f"{name} holds no video stream (FFmpeg reads it as "
                             f"{container.format.name})")
    video = videos[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    duration: float | None = None
    if container.duration is not None:
        duration = container.duration / av.time_base
    elif video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    rate: Fraction | None = video.average_rate or video.guessed_rate
    return VideoFacts(
        container=container.format.name, duration=duration,
        video_codec=video.codec_context.name, width=video.codec_context.width,
        height=video.codec_context.height, fps=float(rate) if rate else None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        bit_rate=container.bit_rate or None)
