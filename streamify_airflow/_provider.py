"""What Airflow learns about this provider through the ``apache_airflow_provider`` entry point.

Airflow reads this without importing the hook, so the connection form (the ``conn-fields``
and ``ui-field-behaviour`` below) is described here, declaratively, and nothing in this
module imports Airflow or boto3.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

__all__ = ["CONNECTION_TYPE", "DEFAULT_CONN_ID", "get_provider_info"]

CONNECTION_TYPE = "streamify"
DEFAULT_CONN_ID = "streamify_default"


def _text(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow's providers manager validates and registers."""
    return {
        "package-name": "streamify",
        "name": "Streamify",
        "description": "Resumable, parallel, verified multipart uploads of large files "
                       "(videos above all) to S3: a task retried on any worker sends only "
                       "the parts S3 does not hold yet.",
        "versions": [version("streamify")],
        "integrations": [{"integration-name": "Streamify", "tags": ["aws"]}],
        "hooks": [{"integration-name": "Streamify",
                   "python-modules": ["streamify_airflow._hook"]}],
        "operators": [{"integration-name": "Streamify",
                       "python-modules": ["streamify_airflow._operator"]}],
        "connection-types": [{
            "connection-type": CONNECTION_TYPE,
            "hook-class-name": "streamify_airflow.StreamifyHook",
            "hook-name": "Streamify",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "login", "port"],
                "relabeling": {"host": "Endpoint URL", "password": "API key"},
                "placeholders": {
                    "host": "API service URL, or S3 endpoint (direct; empty for AWS)",
                    "password": "API mode: the service's API key",
                },
            },
            "conn-fields": {
                "mode": {
                    "label": "Mode",
                    "description": "direct: this worker drives S3 with credentials (the AWS "
                                   "chain or an AWS connection); api: through a Streamify API "
                                   "service with an API key, no storage credentials",
                    "schema": {"type": ["string", "null"], "enum": ["direct", "api"],
                               "default": "direct"},
                },
                "region": _text("Region", "S3 region (direct mode), for example us-east-1"),
                "state_location": _text(
                    "State location",
                    "Where resume hints are kept: a directory or an fsspec URL every worker "
                    "can reach (s3://bucket/streamify-state/). Empty: S3 alone is asked "
                    "(ListMultipartUploads) and a local directory holds the hints"),
                "aws_conn_id": _text(
                    "AWS connection",
                    "Direct mode: take credentials, region and endpoint from this Airflow "
                    "AWS connection (for example aws_default) instead of the AWS chain"),
            },
        }],
    }
