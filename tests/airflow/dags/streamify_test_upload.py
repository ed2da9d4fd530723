"""One StreamifyUploadOperator whose every input is a param: the tests' own small DAG."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from streamify_airflow import StreamifyUploadOperator

with DAG(
    dag_id="streamify_test_upload",
    schedule=None,
    params={"source": "", "destination": "", "conn_id": "streamify_default"},
):
    StreamifyUploadOperator(
        task_id="upload",
        source="{{ params.source }}",
        destination="{{ params.destination }}",
        conn_id="{{ params.conn_id }}",
        part_size="5MiB",
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
