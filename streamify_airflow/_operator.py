"""``StreamifyUploadOperator``: one source to one S3 destination, resumable across retries.

Thin by design: it reads its arguments, hands them to :class:`StreamifyHook`, logs the
engine's progress and turns errors into task failures. Map it over many files with
``.partial(...).expand(source=[...])`` to spread an ingestion over Airflow's workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from ._failures import task_errors
from ._hook import StreamifyHook, TransferSummary
from ._lineage import operator_lineage, record_asset_events, resolve_lineage_target
from ._options import UploadOptions
from ._progress import ProgressLog
from ._provider import DEFAULT_CONN_ID
from ._video import NotAVideo, VideoOptions

__all__ = ["StreamifyUploadOperator"]


class StreamifyUploadOperator(BaseOperator):
    """Upload ``source`` to ``destination`` with Streamify and return what happened.

    :param source: a local path or any fsspec URL (``s3://``, ``sftp://``, ``https://``...).
    :param destination: ``s3://bucket/key``, or ``s3://bucket/prefix/`` to keep the
        source's file name.
    :param conn_id: a ``streamify`` (or ``aws``) connection; ``streamify_default`` by default.
    :param part_size: preferred part size in bytes or as text (``"16MiB"``).
    :param concurrency: parts sent at once (peak memory about ``concurrency * part_size``).
    :param checksum: additional S3 checksum, ``crc32``, ``sha1`` or ``sha256``.
    :param bwlimit: bandwidth limit in bytes per second or as text (``"20MB"``).
    :param state_location: where resume hints go, a directory or an fsspec URL all workers
        reach; by default the connection's, else the local default. Even with no hint at
        all, a retry finds the open upload in S3 and sends only the missing parts.
    :param replace: overwrite a destination that holds a different object. A destination
        that already holds exactly this source is always skipped.
    :param content_type: the object's Content-Type; ``None`` (the default) tells it from
        the source's first 4 KiB (MP4, MOV, M4V, Matroska, WebM, MPEG-TS, AVI...), else
        from its extension, else ``application/octet-stream``.
    :param metadata: the object's user metadata (``x-amz-meta-*``), a dict of names
        (ASCII letters, digits, ``-``, ``_``) to printable ASCII values, 2 KiB at most.
    :param video_facts: read the source's video facts with FFmpeg's probe (the
        ``streamify[video]`` extra) before sending a byte: container, duration, codecs,
        width, height, frame rate, bit rate. They are the XCom value's ``video``.
    :param not_a_video: what to do, when probing, with a source that is not a readable
        video: ``"fail"`` (the default: the task fails without a retry), ``"skip"`` (the
        task is skipped) or ``"upload"`` (sent as it is, ``video`` is ``None``). Nothing is
        sent before this is decided.
    :param video_metadata: also store the facts as the object's user metadata (``duration``,
        ``codec``, ``width``, ``height``, ``fps``, ``container``, ``audio``); implies
        ``video_facts``. Entries given in ``metadata`` win.
    :param progress_interval: seconds between progress lines in the task log.

    Every parameter is a template field. A rendered option is read at execute time:
    ``"8"``, ``"16MiB"``, ``"true"`` or a dict rendered as text all work (as do native
    objects with ``render_template_as_native_obj=True``); one that means nothing fails
    the task, naming the option, the value and what is accepted.

    Asset events: for each ``AssetAlias`` in ``outlets`` the uploaded object becomes an
    event of the asset ``s3://bucket/key``, its extra ``size``, ``etag``, ``source`` (no
    password or query) and ``skipped``; a DAG scheduled on the alias runs on new objects.
    A destination that already held the source emits no alias event, except on a retry
    (an earlier try may have written it; ``skipped`` is then true). An ``Asset`` outlet
    naming the object itself gets the same extra. With the OpenLineage provider, the task
    reports the source (``file`` and its path, or the URL's ``scheme://host`` and path) as
    input and ``s3://bucket`` and the key, with its size, as output.

    Returns (as XCom) ``bucket``, ``key``, ``size``, ``etag``, ``parts``, ``bytes_sent``,
    ``bytes_resumed``, ``seconds``, ``upload_id``, ``skipped``, ``source``,
    ``content_type``, ``metadata`` and ``video`` (the video facts, or ``None``).
    """

    template_fields: Sequence[str] = (
        "source", "destination", "conn_id", "state_location", "part_size", "concurrency",
        "checksum", "bwlimit", "replace", "content_type", "metadata", "progress_interval",
        "video_facts", "not_a_video", "video_metadata")
    ui_color = "#d9ecff"

    def __init__(self, *, source: str, destination: str, conn_id: str = DEFAULT_CONN_ID,
                 part_size: int | str | None = None, concurrency: int | str | None = None,
                 checksum: str | None = None, bwlimit: int | str | None = None,
                 state_location: str | None = None, replace: bool | str = False,
                 content_type: str | None = None, metadata: dict[str, Any] | str | None = None,
                 progress_interval: float | str = 5.0, video_facts: bool | str = False,
                 not_a_video: NotAVideo | str = "fail", video_metadata: bool | str = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.destination = destination
        self.conn_id = conn_id
        self.part_size = part_size
        self.concurrency = concurrency
        self.checksum = checksum
        self.bwlimit = bwlimit
        self.state_location = state_location
        self.replace = replace
        self.content_type = content_type
        self.metadata = metadata
        self.progress_interval = progress_interval
        self.video_facts = video_facts
        self.not_a_video = not_a_video
        self.video_metadata = video_metadata
        self._hook: StreamifyHook | None = None
        self._summary: TransferSummary | None = None

    @property
    def hook(self) -> StreamifyHook:
        if self._hook is None:
            self._hook = StreamifyHook(self.conn_id)
        return self._hook

    def execute(self, context: Context) -> dict[str, Any]:
        with task_errors(), self.hook as hook:
            options = UploadOptions.read(
                part_size=self.part_size, concurrency=self.concurrency,
                checksum=self.checksum, bwlimit=self.bwlimit, replace=self.replace,
                content_type=self.content_type, metadata=self.metadata,
                state_location=self.state_location, progress_interval=self.progress_interval)
            video = VideoOptions.read(video_facts=self.video_facts,
                                      not_a_video=self.not_a_video,
                                      video_metadata=self.video_metadata)
            facts = video.probe(self.source, self.log)
            summary = hook.transfer(
                self.source, self.destination, config=options.config,
                state_location=options.state_location, replace=options.replace,
                content_type=options.content_type,
                metadata=video.object_metadata(facts, options.metadata),
                on_event=ProgressLog(self.log, interval=options.progress_interval))
        if summary.skipped:
            self.log.info("s3://%s/%s already holds %s (ETag %s): nothing to send",
                          summary.bucket, summary.key, self.source, summary.etag)
        self._summary = summary
        for alias in record_asset_events(list(self.outlets), context, summary):
            self.log.info("asset event s3://%s/%s through the alias %s",
                          summary.bucket, summary.key, alias)
        return {**summary.as_dict(), "video": facts.as_dict() if facts is not None else None}

    def on_kill(self) -> None:
        """Stop sending; the multipart upload and its parts stay for the next try."""
        if self._hook is not None:
            self._hook.pause()

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: the source in, the destination object out."""
        bucket, key = resolve_lineage_target(self.source, self.destination)
        return operator_lineage(self.source, bucket, key)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the same, with the object's size once it was uploaded."""
        summary = self._summary
        if summary is None:
            return self.get_openlineage_facets_on_start()
        return operator_lineage(summary.source, summary.bucket, summary.key,
                                size=summary.size)
