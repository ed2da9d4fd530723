"""Streamify: resumable, parallel, verified multipart uploads of large files to S3.

One door: everything public is importable from ``streamify``.

Names load on first use (PEP 562): ``import streamify`` costs almost nothing, and a program
pays for boto3, fsspec or the HTTP stack only when it touches what needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import upload, upload_stream
    from ._batch import BatchFile, BatchOutcome, FileOutcome, MemoryBudget, UploadBatch
    from ._calls import retrying
    from ._completion import complete_upload
    from ._config import UploadConfig
    from ._content_type import content_type_of
    from ._control import ControlPlane, ObjectInfo, OpenUpload, PartToSign, SignedPart, UploadedPart
    from ._destination import Destination
    from ._engine import Uploader
    from ._errors import (
        AccessDeniedError,
        ConfigError,
        DestinationError,
        DestinationExistsError,
        EndpointError,
        IntegrityError,
        SourceChangedError,
        SourceError,
        StateStoreError,
        StreamifyError,
        TransferError,
        UploadCancelledError,
        UploadGoneError,
    )
    from ._events import (
        Completed,
        Event,
        Failed,
        PartDone,
        Paused,
        Progress,
        Restarted,
        Resumed,
        Retrying,
        Started,
        Verifying,
    )
    from ._filesystem import StreamifyFileSystem
    from ._fsfiles import StreamedFile
    from ._housekeeping import apply_bucket_rules, collect_stale_uploads
    from ._httpcontrol import HttpControlPlane
    from ._plan import Part, PartPlan, plan_parts
    from ._result import UploadResult
    from ._resume import (
        Create,
        ListedFacts,
        NeedHashes,
        RangeHashes,
        Refuse,
        Resume,
        decide_listed,
    )
    from ._s3control import S3ControlPlane
    from ._source import (
        Fingerprint,
        FsspecSource,
        LocalFileSource,
        Source,
        file_name,
        open_source,
    )
    from ._state import ResumeState, StateStore
    from ._stream import StreamWriter
    from ._transport import PartSender
    from ._units import parse_size
    from ._video import NotAVideoError, VideoFacts, probe_video

__version__ = "0.1.0"

# Where each public name lives; __getattr__ imports the module the first time it is asked for.
_WHERE: dict[str, str] = {
    "AccessDeniedError": "._errors",
    "BatchFile": "._batch",
    "BatchOutcome": "._batch",
    "Completed": "._events",
    "ConfigError": "._errors",
    "ControlPlane": "._control",
    "Create": "._resume",
    "Destination": "._destination",
    "DestinationError": "._errors",
    "DestinationExistsError": "._errors",
    "EndpointError": "._errors",
    "Event": "._events",
    "Failed": "._events",
    "FileOutcome": "._batch",
    "Fingerprint": "._source",
    "FsspecSource": "._source",
    "HttpControlPlane": "._httpcontrol",
    "IntegrityError": "._errors",
    "ListedFacts": "._resume",
    "LocalFileSource": "._source",
    "MemoryBudget": "._batch",
    "NeedHashes": "._resume",
    "NotAVideoError": "._video",
    "ObjectInfo": "._control",
    "OpenUpload": "._control",
    "Part": "._plan",
    "PartDone": "._events",
    "PartPlan": "._plan",
    "PartSender": "._transport",
    "PartToSign": "._control",
    "Paused": "._events",
    "Progress": "._events",
    "RangeHashes": "._resume",
    "Refuse": "._resume",
    "Restarted": "._events",
    "Resume": "._resume",
    "ResumeState": "._state",
    "Resumed": "._events",
    "Retrying": "._events",
    "S3ControlPlane": "._s3control",
    "SignedPart": "._control",
    "Source": "._source",
    "SourceChangedError": "._errors",
    "SourceError": "._errors",
    "Started": "._events",
    "StateStore": "._state",
    "StateStoreError": "._errors",
    "StreamWriter": "._stream",
    "StreamedFile": "._fsfiles",
    "StreamifyError": "._errors",
    "StreamifyFileSystem": "._filesystem",
    "TransferError": "._errors",
    "UploadBatch": "._batch",
    "UploadCancelledError": "._errors",
    "UploadConfig": "._config",
    "UploadGoneError": "._errors",
    "UploadResult": "._result",
    "UploadedPart": "._control",
    "Uploader": "._engine",
    "Verifying": "._events",
    "VideoFacts": "._video",
    "apply_bucket_rules": "._housekeeping",
    "collect_stale_uploads": "._housekeeping",
    "complete_upload": "._completion",
    "content_type_of": "._content_type",
    "decide_listed": "._resume",
    "file_name": "._source",
    "open_source": "._source",
    "parse_size": "._units",
    "plan_parts": "._plan",
    "probe_video": "._video",
    "retrying": "._calls",
    "upload": "._api",
    "upload_stream": "._api",
}

__all__ = [
    "AccessDeniedError",
    "BatchFile",
    "BatchOutcome",
    "Completed",
    "ConfigError",
    "ControlPlane",
    "Create",
    "Destination",
    "DestinationError",
    "DestinationExistsError",
    "EndpointError",
    "Event",
    "Failed",
    "FileOutcome",
    "Fingerprint",
    "FsspecSource",
    "HttpControlPlane",
    "IntegrityError",
    "ListedFacts",
    "LocalFileSource",
    "MemoryBudget",
    "NeedHashes",
    "NotAVideoError",
    "ObjectInfo",
    "OpenUpload",
    "Part",
    "PartDone",
    "PartPlan",
    "PartSender",
    "PartToSign",
    "Paused",
    "Progress",
    "RangeHashes",
    "Refuse",
    "Restarted",
    "Resume",
    "ResumeState",
    "Resumed",
    "Retrying",
    "S3ControlPlane",
    "SignedPart",
    "Source",
    "SourceChangedError",
    "SourceError",
    "Started",
    "StateStore",
    "StateStoreError",
    "StreamWriter",
    "StreamedFile",
    "StreamifyError",
    "StreamifyFileSystem",
    "TransferError",
    "UploadBatch",
    "UploadCancelledError",
    "UploadConfig",
    "UploadGoneError",
    "UploadResult",
    "UploadedPart",
    "Uploader",
    "Verifying",
    "VideoFacts",
    "__version__",
    "apply_bucket_rules",
    "collect_stale_uploads",
    "complete_upload",
    "content_type_of",
    "decide_listed",
    "file_name",
    "open_source",
    "parse_size",
    "plan_parts",
    "probe_video",
    "retrying",
    "upload",
    "upload_stream",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamify' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
