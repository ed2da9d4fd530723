"""StreamifyUploadOperator DAGs whose every input is a param: the tests' own small DAGs.

``streamify_test_upload`` sends as fast as it can; ``streamify_test_throttled`` is held to
6 MiB/s by the operator's ``bwlimit``, for tests that kill its worker mid-upload.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG

from streamify_airflow import StreamifyUploadOperator


def upload_dag(dag_id: str, **options: Any) -> DAG:
    """One upload task, retried once after a second, with the operator's ``options``."""
    with DAG(
        dag_id=dag_id,
        schedule=None,
        params={"source": "", "destination": "", "conn_id": "streamify_default"},
    ) as dag:
        StreamifyUploadOperator(
            task_id="upload",
            source="{{ params.source }}",
            destination="{{ params.destination }}",
            conn_id="{{ params.conn_id }}",
            part_size="5MiB",
            retries=1,
            retry_delay=timedelta(seconds=1),
            **options,
        )
    return dag


upload = upload_dag("streamify_test_upload")
throttled = upload_dag("streamify_test_throttled", concurrency=2, bwlimit="6MiB",
                       progress_interval=1.0)
