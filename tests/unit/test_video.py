"""Video facts from FFmpeg's probe, on small clips encoded in the test (no downloads)."""

from __future__ import annotations

import sys
from pathlib import Path

import fsspec
import pytest
from streamify import ConfigError, NotAVideoError, VideoFacts, open_source, probe_video
from streamify._video import SourceReader, read_facts

from tests.videos import make_clip, need_pyav

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _pyav() -> None:
    need_pyav()


@pytest.mark.parametrize(("name", "codec", "audio", "container", "video_codec"), [
    ("clip.mp4", "mpeg4", "aac", "mov,mp4,m4a,3gp,3g2,mj2", "mpeg4"),
    ("clip.mkv", "libx264", None, "matroska,webm", "h264"),
    ("clip.webm", "libvpx-vp9", "libopus", "matroska,webm", "vp9"),
])
def test_probe_reads_the_facts_of_a_real_clip(tmp_path: Path, name: str, codec: str,
                                               audio: str | None, container: str,
                                               video_codec: str) -> None:
    facts = probe_video(make_clip(tmp_path / name, codec=codec, audio=audio))

    assert (facts.container, facts.video_codec, facts.audio_codec) == (container, video_codec,
                                                                      {"aac": "aac",
                                                                       "libopus": "opus",
                                                                       None: None}[audio])
    assert (facts.width, facts.height, facts.fps) == (160, 120, 25.0)
    assert facts.duration == pytest.approx(2.0, abs=0.05)
    assert facts.bit_rate is not None
    assert facts.bit_rate > 0


def test_facts_as_dict_and_as_short_metadata(tmp_path: Path) -> None:
    facts = probe_video(make_clip(tmp_path / "clip.mp4", audio="aac", rate=30))

    assert facts.as_dict() == {
        "container": "mov,mp4,m4a,3gp,3g2,mj2", "duration": facts.duration,
        "video_codec": "mpeg4", "width": 160, "height": 120, "fps": 30.0,
        "audio_codec": "aac", "bit_rate": facts.bit_rate}
    metadata = facts.as_metadata()
    assert metadata == {"container": "mov,mp4,m4a,3gp,3g2,mj2", "codec": "mpeg4",
                        "width": "160", "height": "120",
                        "duration": f"{facts.duration:.3f}", "fps": "30", "audio": "aac"}
    assert sum(len(k) + len(v) for k, v in metadata.items()) < 2048


def test_fractional_frame_rate_and_no_audio_in_metadata() -> None:
    facts = VideoFacts(container="matroska,webm", duration=None, video_codec="h264", width=2,
                       height=2, fps=30000 / 1001, audio_codec=None, bit_rate=None)

    assert facts.as_metadata() == {"container": "matroska,webm", "codec": "h264",
                                   "width": "2", "height": "2", "fps": "29.97"}


def test_text_named_mp4_is_not_a_video(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("minutes of the meeting\n" * 50)

    with pytest.raises(NotAVideoError, match=r"notes\.mp4 is not a video FFmpeg can read"):
        probe_video(notes)


def test_truncated_mp4_is_not_a_video(tmp_path: Path) -> None:
    # FFmpeg's MP4 muxer writes the index (moov) last: half the file has no index.
    whole = make_clip(tmp_path / "whole.mp4").read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(whole[:len(whole) // 2])

    with pytest.raises(NotAVideoError, match=r"half\.mp4"):
        probe_video(half)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "voice.mka"
    with av.open(str(path), "w") as out:
        sound = out.add_stream("libopus", rate=48000)
        assert isinstance(sound, av.AudioStream)
        silence = av.AudioFrame(format="fltp", layout="mono", samples=48000)
        silence.sample_rate = 48000
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        out.mux(sound.encode(silence))
        out.mux(sound.encode(None))

    with pytest.raises(NotAVideoError, match="holds no video stream"):
        probe_video(path)


def test_probe_reads_an_fsspec_url(tmp_path: Path) -> None:
    data = make_clip(tmp_path / "clip.mkv", codec="libx264").read_bytes()
    fsspec.filesystem("memory").pipe("/videos/clip.mkv", data)

    facts = probe_video("memory://videos/clip.mkv")

    assert (facts.container, facts.video_codec, facts.width) == ("matroska,webm", "h264", 160)


@pytest.mark.parametrize("name", ["big.mkv", "big.mov"])
def test_probe_of_a_big_video_reads_a_bounded_part_of_it(tmp_path: Path, name: str) -> None:
    # 150 raw 720p frames: about 200 MiB, whose index sits at the start (Matroska) or the
    # end (QuickTime, behind 200 MiB of samples).
    path = make_clip(tmp_path / name, codec="rawvideo", width=1280, height=720, seconds=6)
    size = path.stat().st_size
    assert size > 190 * MiB
    source = open_source(path)
    reader = SourceReader(source)

    facts = read_facts(reader, name)

    source.close()
    assert (facts.width, facts.height) == (1280, 720)
    assert facts.duration == pytest.approx(6.0)
    print(f"{name}: probe read {reader.bytes_read} of {size} bytes")
    assert reader.bytes_read < 8 * MiB


def test_reader_serves_reads_from_its_block_and_seeks(tmp_path: Path) -> None:
    path = tmp_path / "data"
    data = bytes(range(256)) * 4096  # 1 MiB
    path.write_bytes(data)
    source = open_source(path)
    reader = SourceReader(source)

    assert reader.read(10) == data[:10]
    assert reader.read(20) == data[10:30]
    assert reader.bytes_read == 256 * 1024
    reader.seek(-5, 2)
    assert reader.read(100) == data[-5:]
    assert reader.read(1) == b""
    reader.seek(100)
    reader.seek(50, 1)
    assert reader.read(3) == data[150:153]
    source.close()


def test_missing_extra_says_how_to_install_it(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError

    with pytest.raises(ConfigError, match=r"pip install 'streamify\[video\]'"):
        probe_video(clip)
