"""Airflow provider for Streamify: resumable bulk uploads that survive task retries.

``StreamifyHook`` builds the control plane from an Airflow connection (type ``streamify``,
default id ``streamify_default``); ``StreamifyUploadOperator`` uploads one source and, when
a task is retried on any worker, sends only the parts S3 does not hold yet;
``task_errors()`` turns Streamify errors raised in a ``@task`` into task failures.

Importing this package does not import Airflow or boto3: Airflow's providers manager loads
``get_provider_info`` in every component, so the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._provider import get_provider_info

if TYPE_CHECKING:
    from ._failures import task_errors
    from ._hook import StreamifyHook, TransferSummary
    from ._operator import StreamifyUploadOperator

__all__ = [
    "StreamifyHook",
    "StreamifyUploadOperator",
    "TransferSummary",
    "get_provider_info",
    "task_errors",
]

_LAZY = {
    "StreamifyHook": "._hook",
    "TransferSummary": "._hook",
    "StreamifyUploadOperator": "._operator",
    "task_errors": "._failures",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
