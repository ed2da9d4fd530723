"""Small real videos for tests, encoded here with the FFmpeg inside PyAV (no downloads).

Frames are flat grey planes that change with time; audio is silence. Nothing here needs
numpy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NO_PYAV = ("PyAV is not installed, so no video can be made or probed: "
           "bash scripts/setup.sh server,dev,video")


def need_pyav() -> None:
    """Skip the calling test, saying why, when the ``video`` extra is missing."""
    try:
        import av  # noqa: F401
    except ImportError:
        pytest.skip(NO_PYAV)


def make_clip(path: Path, *, codec: str = "mpeg4", audio: str | None = None,
              seconds: int = 2, width: int = 160, height: int = 120, rate: int = 25) -> Path:
    """Encode a ``seconds`` long ``width`` x ``height`` clip at ``rate`` frames per second
    into ``path`` (its suffix picks the container), with a silent ``audio`` track if asked."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream(audio, rate=48000) if audio is not None else None
        assert sound is None or isinstance(sound, av.AudioStream)
        for index in range(seconds * rate):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(index * 7) % 256]) * plane.buffer_size)
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            silence = av.AudioFrame(format="fltp", layout="mono", samples=48000 * seconds)
            silence.sample_rate = 48000
            for channel in silence.planes:
                channel.update(bytes(channel.buffer_size))
            out.mux(sound.encode(silence))
            out.mux(sound.encode(None))
    return path
