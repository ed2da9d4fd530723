"""The fault soak's Airflow DAG: one StreamifyUploadOperator whose every input is a param.

No retries: a failed task is rerun by the soak, as a user clears and reruns it.
"""

from __future__ import annotations

from airflow.sdk import DAG

from streamify_airflow import StreamifyUploadOperator

PARAMS = {"source": "", "destination": "", "conn_id": "soak", "part_size": "5MiB",
          "concurrency": "3", "bwlimit": ""}

with DAG(dag_id="streamify_soak", schedule=None, params=PARAMS) as soak:
    StreamifyUploadOperator(
        task_id="upload",
        source="{{ params.source }}",
        destination="{{ params.destination }}",
        conn_id="{{ params.conn_id }}",
        part_size="{{ params.part_size }}",
        concurrency="{{ params.concurrency }}",
        bwlimit="{{ params.bwlimit }}",
        progress_interval=1.0,
        retries=0,
    )
