"""``tests/airflow/dags/streamify_test_mapped.py``'s DAG with the Amazon provider's
``LocalFilesystemToS3Operator`` mapped over the folder's files (``expand_kwargs``: a file
name and a key each), in the same pool with the same connection and retries: what
``benchmarks/airflow_mapped.py`` compares Streamify with. Its tasks import neither
Streamify nor the tests.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.transfers.local_to_s3 import LocalFilesystemToS3Operator
from airflow.sdk import DAG, task

POOL = "streamify_mapped"  # as in streamify_test_mapped.py
CONN_ID = "ingest"
PARAMS = {"folder": "", "destination": ""}


@task
def amazon_kwargs(folder: str, destination: str) -> list[dict[str, Any]]:
    """``LocalFilesystemToS3Operator``'s arguments for each file of the folder."""
    return [{"filename": os.path.join(folder, name), "dest_key": destination + name}
            for name in sorted(os.listdir(folder))]


with DAG(dag_id="mapped_amazon", schedule=None, params=PARAMS) as amazon:
    LocalFilesystemToS3Operator.partial(
        task_id="upload", aws_conn_id=CONN_ID, replace=True, pool=POOL, retries=2,
        retry_delay=timedelta(seconds=1),
    ).expand_kwargs(amazon_kwargs("{{ params.folder }}", "{{ params.destination }}"))
