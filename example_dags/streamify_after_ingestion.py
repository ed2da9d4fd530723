"""Runs when ``streamify_video_ingestion`` has put new videos in S3: a downstream DAG
scheduled on the asset alias the ingestion's uploads attach their events to.

Each uploaded video is an event of the asset ``s3://bucket/key`` whose extra holds its
``size``, ``etag``, ``source`` and ``skipped``. The scheduler starts a run of this DAG
once events came in; the run is handed the events that triggered it (several videos
uploaded between two scheduler loops make one run). Airflow has no prefix matching of
assets, so a DAG that wants only part of the ingestion filters the keys itself, as
``new_videos`` does with its ``prefix`` param. Put the processing (transcode, thumbnail,
catalogue) after it.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk import AssetAlias, Param, dag, get_current_context, task

log = logging.getLogger(__name__)

# The alias streamify_video_ingestion's upload tasks name in their outlets.
INGESTED_VIDEOS = AssetAlias("streamify_ingested_videos")


@dag(
    dag_id="streamify_after_ingestion",
    schedule=[INGESTED_VIDEOS],
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    tags=["streamify", "example"],
    params={
        "prefix": Param("s3://", type="string",
                        description="Only the videos whose s3://bucket/key starts so."),
    },
)
def streamify_after_ingestion() -> None:
    @task
    def new_videos() -> list[dict[str, Any]]:
        """The videos whose upload triggered this run (one record each, by URI)."""
        context = get_current_context()
        prefix = context["params"]["prefix"]
        videos = {}
        for event in context["triggering_asset_events"].get(INGESTED_VIDEOS, []):
            if event.asset.uri.startswith(prefix):
                videos[event.asset.uri] = {"uri": event.asset.uri, **event.extra,
                                           "from_run": event.source_run_id}
        for video in videos.values():
            log.info("new video %s (%s bytes, ETag %s) from %s", video["uri"], video["size"],
                     video["etag"], video["source"])
        return sorted(videos.values(), key=lambda video: video["uri"])

    new_videos()


streamify_after_ingestion()
