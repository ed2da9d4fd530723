"""Streamify: resumable, parallel, verified multipart uploads of large files to S3.

One door: everything public is importable from ``streamify``.
"""

from ._api import upload, upload_stream
from ._config import UploadConfig
from ._control import ControlPlane, ObjectInfo, OpenUpload, PartToSign, SignedPart, UploadedPart
from ._destination import Destination
from ._engine import Uploader, UploadResult
from ._errors import (
    AccessDeniedError,
    ConfigError,
    DestinationError,
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
from ._filesystem import StreamedFile, StreamifyFileSystem
from ._housekeeping import apply_bucket_rules, collect_stale_uploads
from ._httpcontrol import HttpControlPlane
from ._plan import Part, PartPlan, plan_parts
from ._s3control import S3ControlPlane
from ._source import Fingerprint, FsspecSource, LocalFileSource, Source, open_source
from ._state import ResumeState, StateStore
from ._stream import StreamWriter
from ._transport import PartSender
from ._units import parse_size

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Completed",
    "ConfigError",
    "ControlPlane",
    "Destination",
    "DestinationError",
    "EndpointError",
    "Event",
    "Failed",
    "Fingerprint",
    "FsspecSource",
    "HttpControlPlane",
    "IntegrityError",
    "LocalFileSource",
    "ObjectInfo",
    "OpenUpload",
    "Part",
    "PartDone",
    "PartPlan",
    "PartSender",
    "PartToSign",
    "Paused",
    "Progress",
    "Restarted",
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
    "UploadCancelledError",
    "UploadConfig",
    "UploadGoneError",
    "UploadResult",
    "UploadedPart",
    "Uploader",
    "Verifying",
    "__version__",
    "apply_bucket_rules",
    "collect_stale_uploads",
    "open_source",
    "parse_size",
    "plan_parts",
    "upload",
    "upload_stream",
]
