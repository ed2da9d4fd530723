"""Ingest the videos under a folder (or glob, or any fsspec URL) into S3 with Streamify.

Each video is one mapped task (``StreamifyUploadOperator.partial(...).expand(...)``), so
Airflow's executor spreads them over its workers. A task that dies is retried, possibly on
another worker, and sends only the parts S3 does not hold yet. A video already in S3 is
verified and skipped, so a rerun uploads nothing new. At the end, a JSON manifest of the
run (key, size, ETag, bytes sent and resumed) is written next to the videos.

Before a byte of a file is sent, FFmpeg's probe reads its video facts (container,
duration, codecs, width, height, frame rate, bit rate; the ``video`` extra): they go in the
manifest and, with short names (``duration``, ``codec``, ``width``, ``height``, ``fps``...),
in the object's S3 metadata. The ``not_a_video`` param says what becomes of a file that is
not a readable video: ``upload`` it all the same (the default), ``skip`` it, or ``fail``
its task. ``video_facts=false`` turns the probe off.

Each video uploaded is an event of the asset ``s3://bucket/key`` through the asset alias
``streamify_ingested_videos`` (extra: size, ETag, source); ``streamify_after_ingestion``
is scheduled on that alias. A video skipped as already there is no event.

With the embedded emulator (``streamify serve --local``) and a connection for it (see the
README, "Airflow"), the defaults work as they are: put videos in /tmp/streamify-videos (the system's
temporary folder).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import fsspec
from airflow.sdk import AssetAlias, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from streamify_airflow import StreamifyHook, StreamifyUploadOperator, task_errors

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mxf", ".ts", ".mpg")
MANIFEST_NAME = "manifest.json"
# Downstream DAGs schedule on this alias (schedule=[AssetAlias(...)]): see
# streamify_after_ingestion.py.
INGESTED_VIDEOS = AssetAlias("streamify_ingested_videos")
DEFAULT_SOURCE = os.path.join(tempfile.gettempdir(), "streamify-videos")

log = logging.getLogger(__name__)


@dag(
    dag_id="streamify_video_ingestion",
    schedule=None,
    catchup=False,
    tags=["streamify", "example"],
    params={
        "source": Param(DEFAULT_SOURCE, type="string",
                        description="A folder, a glob (clips/*.mov) or any fsspec URL."),
        "destination": Param("s3://streamify/videos/", type="string", pattern="^s3://.+/$",
                             description="The S3 prefix the videos go under."),
        "conn_id": Param("streamify_default", type="string",
                         description="A streamify (or aws) connection."),
        "video_facts": Param(True, type="boolean",
                             description="Probe each file with FFmpeg before sending it; "
                                         "the facts go in the manifest and the S3 metadata."),
        "not_a_video": Param("upload", type="string", enum=["upload", "skip", "fail"],
                             description="What becomes of a file that is not a readable "
                                         "video (probed files only)."),
    },
    # Parts are retried inside a task already; a task retry is for a lost worker or process,
    # and it resumes the upload, so one is enough.
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
)
def streamify_video_ingestion() -> None:
    @task
    def list_videos(source: str) -> list[str]:
        """The videos to ingest: files with a video extension in the folder or glob."""
        fs, path = fsspec.core.url_to_fs(source)
        if any(char in path for char in "*?["):
            paths = fs.glob(path)
        elif fs.isdir(path):
            paths = fs.ls(path, detail=False)
        else:
            raise AirflowFailException(f"{source} is neither a folder nor a glob: give the "
                                       "folder holding the videos, or a pattern such as "
                                       "/data/clips/*.mp4")
        videos = sorted(p for p in paths if p.lower().endswith(VIDEO_EXTENSIONS))
        names = [p.rsplit("/", 1)[-1] for p in videos]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise AirflowFailException(f"{source} matches several videos named "
                                       f"{', '.join(clashes)}; they would share one S3 key: "
                                       "ingest one folder at a time")
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        return [p if local else fs.unstrip_protocol(p) for p in videos]

    uploads = StreamifyUploadOperator.partial(
        task_id="upload",
        destination="{{ params.destination }}",
        conn_id="{{ params.conn_id }}",
        part_size="16MiB",
        concurrency=4,
        video_facts="{{ params.video_facts }}",
        video_metadata="{{ params.video_facts }}",
        not_a_video="{{ params.not_a_video }}",
        max_active_tis_per_dagrun=4,
        outlets=[INGESTED_VIDEOS],
    ).expand(source=list_videos("{{ params.source }}"))

    # A file skipped as not a video must not keep the manifest from being written.
    @task(trigger_rule="none_failed")
    def write_manifest(results: Sequence[dict[str, Any]], destination: str,
                       conn_id: str) -> dict[str, Any]:
        """Write what this run ingested as JSON next to the videos; return it."""
        context = get_current_context()
        entries = sorted(({k: r[k] for k in ("source", "key", "size", "etag", "bytes_sent",
                                             "bytes_resumed", "skipped", "video")}
                          # One request for all; iterating would ask for one past the
                          # end, which Airflow logs as an error ("XCom not found").
                          for r in results[:] if r),  # a skipped task returned nothing
                         key=lambda e: e["key"])
        manifest = {
            "dag_run": context["run_id"],
            "written_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "videos": entries,
        }
        with (tempfile.TemporaryDirectory() as folder, task_errors(),
              StreamifyHook(conn_id) as hook):
            path = os.path.join(folder, MANIFEST_NAME)
            with open(path, "w") as fh:
                json.dump(manifest, fh, indent=1)
            summary = hook.transfer(path, destination + MANIFEST_NAME, replace=True)
        log.info("manifest of %d videos: s3://%s/%s", len(entries), summary.bucket, summary.key)
        return manifest

    # Airflow hands the task the mapped uploads' XCom values, a list of dicts, at run time.
    write_manifest(uploads.output,  # type: ignore[arg-type]
                   "{{ params.destination }}", "{{ params.conn_id }}")


streamify_video_ingestion()
