"""``StreamifyHook``: builds the control plane from an Airflow connection and runs uploads.

The hook owns the connection, the control plane (created on first use, never in the
constructor; ``close()`` closes it) and the resume state store. Uploading, resuming and
retrying parts are the core's: the hook hands a source and a destination to
:class:`streamify.Uploader`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from botocore.config import Config
from streamify import (
    ConfigError,
    ControlPlane,
    Destination,
    DestinationError,
    DestinationExistsError,
    Event,
    HttpControlPlane,
    OpenUpload,
    S3ControlPlane,
    StateStore,
    TransferError,
    UploadConfig,
    Uploader,
    collect_stale_uploads,
    content_type_of,
    file_name,
)

from ._lineage import report_hook_lineage
from ._provider import CONNECTION_TYPE, DEFAULT_CONN_ID
from ._settings import ConnectionSettings

__all__ = ["StreamifyHook", "TransferSummary"]


@dataclass(frozen=True, kw_only=True)
class TransferSummary:
    """What one upload task did; ``as_dict()`` is the operator's XCom value."""

    bucket: str
    key: str
    size: int
    etag: str
    parts: int
    bytes_sent: int
    """Bytes this attempt sent (parts retried included)."""
    bytes_resumed: int
    """Bytes S3 already held and that were verified instead of sent again."""
    seconds: float
    upload_id: str
    skipped: bool
    """The destination already held this exact source: nothing was sent."""
    source: str
    content_type: str
    """The object's Content-Type: as given, else told from the source's first bytes."""
    metadata: dict[str, str]
    """The object's user metadata (``x-amz-meta-*``)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StreamifyHook(BaseHook):
    """Streamify through the Airflow connection ``streamify_conn_id``.

    A ``streamify`` connection is either ``direct`` (this worker drives S3 with
    credentials from the AWS chain, or from the AWS connection named in its
    ``aws_conn_id``) or ``api`` (a Streamify API service at its endpoint URL with its API
    key). An ``aws`` connection may be named directly as well.

    The hook closes the control plane it made with ``close()`` (or at the end of a
    ``with`` block); used again after that, it makes a new one.
    """

    conn_name_attr = "streamify_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Streamify"

    def __init__(self, streamify_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.streamify_conn_id = streamify_conn_id
        self._settings: ConnectionSettings | None = None
        self._control: ControlPlane | None = None
        # Read by pause(), which may run in a signal handler (on_kill) on the very thread
        # that is inside transfer(): so no lock, only single assignments.
        self._running: Uploader | None = None
        self._stop_asked = False

    # ------------------------------------------------------------------ the connection
    @property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, read on first use."""
        if self._settings is None:
            try:
                conn = self.get_connection(self.streamify_conn_id)
            except AirflowNotFoundException as exc:
                raise ConfigError(
                    f"connection {self.streamify_conn_id!r} is not defined: create it (type "
                    f"{CONNECTION_TYPE!r}) or set AIRFLOW_CONN_"
                    f"{self.streamify_conn_id.upper()}") from exc
            self._settings = ConnectionSettings.from_connection(conn)
        return self._settings

    def get_conn(self) -> ControlPlane:
        """The control plane this connection describes (created once, on first use)."""
        if self._control is None:
            settings = self.settings
            if settings.mode == "api":
                assert settings.endpoint_url is not None and settings.api_key is not None
                self._control = HttpControlPlane(settings.endpoint_url, token=settings.api_key)
            elif settings.aws_conn_id:
                self._control = self._through_aws_connection(settings.aws_conn_id)
            else:
                self._control = S3ControlPlane(endpoint_url=settings.endpoint_url,
                                               region=settings.region)
        return self._control

    def close(self) -> None:
        """Close the control plane this hook made; safe to call twice."""
        control, self._control = self._control, None
        if control is not None:
            control.close()

    def __enter__(self) -> StreamifyHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _through_aws_connection(self, aws_conn_id: str) -> S3ControlPlane:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        try:
            # The AWS hook would fall back to the default credentials without a word.
            self.get_connection(aws_conn_id)
        except AirflowNotFoundException as exc:
            raise ConfigError(
                f"connection {self.streamify_conn_id!r} names the AWS connection "
                f"{aws_conn_id!r}, which is not defined: create it or fix the name") from exc
        aws = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3")
        wrapper = aws.conn_config
        endpoint = self.settings.endpoint_url or wrapper.get_service_endpoint_url("s3")
        region = self.settings.region or wrapper.region_name
        return S3ControlPlane(endpoint_url=endpoint, region=region,
                              session=aws.get_session(region_name=region),
                              client_kwargs=aws_client_kwargs(aws_conn_id, wrapper.verify,
                                                              wrapper.botocore_config))

    def state_store(self, location: str | None = None) -> StateStore:
        """Resume hints at ``location``, else the connection's, else the core's default."""
        return StateStore(location or self.settings.state_location)

    # ------------------------------------------------------------------ uploads
    def transfer(self, source: str, destination: str, *, config: UploadConfig | None = None,
                 state_location: str | None = None, replace: bool = False,
                 content_type: str | None = None, metadata: dict[str, str] | None = None,
                 on_event: Callable[[Event], None] | None = None) -> TransferSummary:
        """Upload ``source`` (a path or fsspec URL) to ``destination`` (``s3://bucket/key``,
        or a prefix ending in ``/`` to which the source's file name is added).

        An open upload to the same key is resumed, found through the state or, with no
        state, through S3 itself. A destination that already holds exactly this source
        is left alone; one that holds something else is refused unless ``replace``.
        The object gets ``content_type`` (``None``: told from the source's first bytes,
        else its extension) and the user ``metadata``.
        """
        target = resolve_destination(source, destination)
        if content_type is None:
            try:
                content_type = content_type_of(source)
            except OSError:
                content_type = content_type_of(source, head=b"")  # the upload says why
        config = (config or UploadConfig()).replace(content_type=content_type)
        # The core leaves an identical object alone; without replace it refuses another one.
        uploader = Uploader(source, target, control=self.get_conn(),
                            config=config if replace else config.replace(
                                if_exists="refuse_different"),
                            state=self.state_store(state_location), metadata=metadata)
        self._running = uploader
        try:
            # A pause asked for before the run began would be forgotten when it begins:
            # the run's first event applies it.
            uploader.subscribe(self._pause_if_asked)
            if on_event is not None:
                uploader.subscribe(on_event)
            try:
                result = uploader.run()
            except DestinationExistsError as exc:
                raise DestinationExistsError(
                    f"{target} already holds a different object than {source}: set "
                    "replace=True to overwrite it, or choose another destination") from exc
            if result.status != "completed":
                raise TransferError(f"upload of {source} to {target} stopped before it "
                                    "finished; the parts S3 holds are kept: run the task "
                                    "again to resume")
        finally:
            self._running = None
            self._stop_asked = False
            uploader.close()
        report_hook_lineage(self, source, target.bucket, target.key)
        return TransferSummary(
            bucket=target.bucket, key=target.key, size=result.size, etag=result.etag,
            parts=result.parts, bytes_sent=result.bytes_sent,
            bytes_resumed=result.bytes_resumed, seconds=result.seconds,
            upload_id=result.upload_id, skipped=result.skipped, source=source,
            content_type=config.content_type, metadata=dict(metadata or {}))

    def pause(self) -> None:
        """Stop the running upload after its parts in flight; it stays resumable. Asked
        while no upload runs, it stops the next ``transfer`` as soon as that starts (a
        kill that came while the task was still getting ready).

        Never blocks, so that ``on_kill`` may call it from a signal handler."""
        self._stop_asked = True
        running = self._running
        if running is not None:
            running.pause()

    def _pause_if_asked(self, event: Event) -> None:
        running = self._running
        if self._stop_asked and running is not None:
            running.pause()

    # ------------------------------------------------------------------ housekeeping
    def abort_abandoned(self, where: str, *, older_than: float, include_foreign: bool = False,
                        state_location: str | None = None,
                        dry_run: bool = False) -> list[OpenUpload]:
        """Abort the multipart uploads under ``where`` (``s3://bucket/prefix``) started more
        than ``older_than`` seconds ago (only Streamify's unless ``include_foreign``)."""
        return collect_stale_uploads(self.get_conn(), Destination.parse(where),
                                     self.state_store(state_location), older_than=older_than,
                                     include_foreign=include_foreign, dry_run=dry_run)


def aws_client_kwargs(aws_conn_id: str, verify: object,
                      config: Config | None) -> dict[str, Any]:
    """What an ``aws`` connection's extras say about the S3 client, as the Amazon provider
    reads them: ``verify`` (true, false or the path of a CA bundle) and ``config_kwargs``
    (any botocore ``Config`` argument: ``{"s3": {"addressing_style": "path"}}``,
    ``proxies``, ``retries``...), merged over Streamify's own client settings."""
    kwargs: dict[str, Any] = {}
    if config is not None:
        kwargs["config"] = config
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
        verify = verify.strip().lower() == "true"
    if isinstance(verify, str):
        if not os.path.isfile(verify) and not os.path.isdir(verify):
            raise ConfigError(f"connection {aws_conn_id!r}: extra 'verify' is {verify!r}, "
                              "which is no CA bundle file or folder on this worker: give "
                              "true, false or the path of a PEM bundle")
    elif verify is not None and not isinstance(verify, bool):
        raise ConfigError(f"connection {aws_conn_id!r}: extra 'verify' is {verify!r}: give "
                          "true, false or the path of a PEM bundle")
    if verify is not None:
        kwargs["verify"] = verify
    return kwargs


def resolve_destination(source: str, destination: str) -> Destination:
    """``destination`` itself, or the source's file name inside it when it is a prefix."""
    target = Destination.parse(destination)
    if not target.is_prefix:
        return target
    name = file_name(source)
    if not name:
        raise DestinationError(f"{destination} is a prefix and {source!r} has no file name "
                               "to put in it: give the full s3://bucket/key")
    return target.child(name)

