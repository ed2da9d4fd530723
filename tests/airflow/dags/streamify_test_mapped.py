"""Mapped bulk ingestion: every file of a folder to one S3 prefix, one mapped task per file,
never more than the pool's slots at a time.

``streamify_test_mapped`` maps ``StreamifyUploadOperator`` with ``.expand(source=...)``;
``benchmarks/dags/mapped_amazon.py`` holds the same DAG with the Amazon provider's operator
(``benchmarks/airflow_mapped.py`` runs both). Params: ``folder`` (local), ``destination``
(``s3://bucket/prefix/``), and ``bwlimit`` and ``concurrency`` per task (empty: the
operator's default). Every mapped task runs in the pool ``streamify_mapped`` and uses the
connection ``ingest``, which the deployment defines.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, task

from streamify_airflow import StreamifyUploadOperator

POOL = "streamify_mapped"
CONN_ID = "ingest"
PARAMS = {"folder": "", "destination": "", "bwlimit": "", "concurrency": ""}
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=1)}


@task
def list_files(folder: str) -> list[str]:
    """The folder's files, by name."""
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))]


with DAG(dag_id="streamify_test_mapped", schedule=None, params=PARAMS) as streamify:
    StreamifyUploadOperator.partial(
        task_id="upload", destination="{{ params.destination }}", conn_id=CONN_ID,
        part_size="5MiB", bwlimit="{{ params.bwlimit }}",
        concurrency="{{ params.concurrency }}", progress_interval=1.0, pool=POOL,
        **RETRIES,
    ).expand(source=list_files("{{ params.folder }}"))
