"""Abort abandoned multipart uploads and report them: their parts cost storage until then.

An upload counts as abandoned when it started longer ago than the limit and none of its
parts was written since, so an upload still in progress is never touched. By default only
uploads Streamify started (recorded in the connection's state location) are aborted; set
``include_foreign`` to clean up any tool's leftovers under the prefix.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from streamify_airflow import StreamifyHook, task_errors

log = logging.getLogger(__name__)


@dag(
    dag_id="streamify_housekeeping",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    tags=["streamify", "example"],
    params={
        "where": Param("s3://streamify/", type="string", pattern="^s3://.+",
                       description="The bucket, or bucket and key prefix, to clean up."),
        "older_than_hours": Param(24 * 7, type="number", minimum=0,
                                  description="Abort uploads idle for longer than this."),
        "include_foreign": Param(False, type="boolean",
                                 description="Also abort uploads Streamify did not start."),
        "dry_run": Param(False, type="boolean", description="Only report what would go."),
        "conn_id": Param("streamify_default", type="string"),
    },
)
def streamify_housekeeping() -> None:
    @task
    def abort_abandoned() -> list[dict[str, Any]]:
        """Abort the abandoned uploads under ``where``; return one record per upload."""
        params = get_current_context()["params"]
        with task_errors(), StreamifyHook(params["conn_id"]) as hook:
            stale = hook.abort_abandoned(
                params["where"], older_than=float(params["older_than_hours"]) * 3600,
                include_foreign=params["include_foreign"], dry_run=params["dry_run"])
        return [{
            "bucket": upload.destination.bucket,
            "key": upload.destination.key,
            "upload_id": upload.upload_id,
            "initiated": datetime.datetime.fromtimestamp(
                upload.initiated, datetime.UTC).isoformat(timespec="seconds"),
        } for upload in stale]

    @task
    def report(aborted: list[dict[str, Any]]) -> str:
        """One log line per aborted upload and a summary (also the task's XCom)."""
        params = get_current_context()["params"]
        verb = "would abort" if params["dry_run"] else "aborted"
        for item in aborted:
            log.info("%s s3://%s/%s upload %s (started %s)", verb, item["bucket"], item["key"],
                     item["upload_id"], item["initiated"])
        summary = f"{verb} {len(aborted)} abandoned upload(s) under {params['where']}"
        log.info("%s", summary)
        return summary

    # At run time Airflow hands ``report`` the list the first task returned.
    report(abort_abandoned())  # type: ignore[arg-type]


streamify_housekeeping()
