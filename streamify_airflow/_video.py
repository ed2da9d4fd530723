"""Video facts for an upload task: the source is probed before any byte of it is sent, and
the DAG's policy decides what happens to a source that is not a readable video.

``not_a_video``:

- ``"fail"`` (the default): the task fails at once, without a retry, naming the source
  and what FFmpeg said. A DAG that asks for video facts expects videos; a file that is
  not one is a mistake to see, not to store.
- ``"skip"``: the task is skipped (Airflow's ``skipped`` state), nothing sent.
- ``"upload"``: the file is uploaded as it is, its ``video`` facts ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from airflow.sdk.exceptions import AirflowSkipException
from streamify import ConfigError, NotAVideoError, VideoFacts, probe_video

from ._options import MAX_METADATA_BYTES
from ._options import _flag as read_flag
from ._progress import TaskLog

__all__ = ["NotAVideo", "VideoOptions", "read_not_a_video"]

NotAVideo = Literal["fail", "skip", "upload"]


@dataclass(frozen=True, kw_only=True)
class VideoOptions:
    """The operator's video options, as rendered, read and checked."""

    facts: bool = False
    """Probe the source before sending (``video_metadata`` implies it)."""
    not_a_video: NotAVideo = "fail"
    metadata: bool = False
    """Store the facts as the object's user metadata."""

    @classmethod
    def read(cls, *, video_facts: object = False, not_a_video: object = "fail",
             video_metadata: object = False) -> VideoOptions:
        metadata = read_flag("video_metadata", video_metadata)
        return cls(facts=read_flag("video_facts", video_facts) or metadata,
                   not_a_video=read_not_a_video(not_a_video), metadata=metadata)

    def probe(self, source: str, log: TaskLog) -> VideoFacts | None:
        """The video facts of ``source`` when asked for, else ``None``; see
        :func:`probe_before_upload`."""
        return probe_before_upload(source, self.not_a_video, log) if self.facts else None

    def object_metadata(self, facts: VideoFacts | None,
                        given: dict[str, str]) -> dict[str, str]:
        """The object's user metadata: the facts' short entries when asked for, under the
        entries the DAG gave."""
        if facts is None or not self.metadata:
            return given
        merged = {**facts.as_metadata(), **given}
        if sum(len(name) + len(value) for name, value in merged.items()) > MAX_METADATA_BYTES:
            raise ConfigError("the video facts do not fit in S3's 2 KiB of user metadata "
                              "beside the metadata given: shorten it, or set "
                              "video_metadata=False", parameter="video_metadata")
        return merged


def read_not_a_video(value: object) -> NotAVideo:
    """The policy as the DAG wrote or Jinja rendered it; ``ConfigError`` otherwise."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in get_args(NotAVideo):
        raise ConfigError(f"not_a_video={value!r} is not a policy: give 'fail', 'skip' or "
                          "'upload'", parameter="not_a_video")
    return cast(NotAVideo, text)


def probe_before_upload(source: str, not_a_video: NotAVideo,
                        log: TaskLog) -> VideoFacts | None:
    """The video facts of ``source``, or ``None`` for a source that is not a video and is
    to be uploaded all the same. Raises ``NotAVideoError`` (``"fail"``) or
    ``AirflowSkipException`` (``"skip"``) for one that is not."""
    try:
        facts = probe_video(source)
    except NotAVideoError as exc:
        if not_a_video == "fail":
            raise
        if not_a_video == "skip":
            raise AirflowSkipException(f"{exc}; skipped (not_a_video='skip'): nothing "
                                       "was sent") from exc
        log.warning("%s; uploading it all the same (not_a_video='upload')", exc)
        return None
    log.info("%s: %s %dx%d at %s fps, %s s, in %s", source, facts.video_codec, facts.width,
             facts.height, facts.fps, facts.duration, facts.container)
    return facts
