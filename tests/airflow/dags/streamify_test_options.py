"""One StreamifyUploadOperator whose every option is a param, rendered as text (Jinja's
default) in one DAG and as native objects (``render_template_as_native_obj``) in the other."""

from __future__ import annotations

from airflow.sdk import DAG

from streamify_airflow import StreamifyUploadOperator

PARAMS = {"source": "", "destination": "", "conn_id": "streamify_default",
          "part_size": "5MiB", "concurrency": 2, "checksum": "none", "bwlimit": None,
          "replace": False, "content_type": None, "metadata": {}, "state_location": None,
          "progress_interval": 5}

for dag_id, native in (("streamify_test_options", False),
                       ("streamify_test_options_native", True)):
    with DAG(dag_id=dag_id, schedule=None, params=PARAMS,
             render_template_as_native_obj=native):
        StreamifyUploadOperator(
            task_id="upload",
            source="{{ params.source }}",
            destination="{{ params.destination }}",
            conn_id="{{ params.conn_id }}",
            part_size="{{ params.part_size }}",
            concurrency="{{ params.concurrency }}",
            checksum="{{ params.checksum }}",
            bwlimit="{{ params.bwlimit }}",
            replace="{{ params.replace }}",
            content_type="{{ params.content_type }}",
            metadata="{{ params.metadata }}",
            state_location="{{ params.state_location }}",
            progress_interval="{{ params.progress_interval }}",
        )
