"""What an upload tells the rest of Airflow: asset events, and OpenLineage datasets.

An uploaded object is the asset ``s3://bucket/key``. The operator attaches an event for it
to each ``AssetAlias`` in its ``outlets`` (the keys are only known at run time, so an alias
is what a downstream DAG schedules on), with ``size``, ``etag``, ``source`` and ``skipped``
in the event's extra; an ``Asset`` outlet naming the very object gets that extra too.

A destination that already held the source is no news: no alias event, unless the task is
on a retry (an earlier try may have written the object and died before Airflow recorded
the event; downstream then sees ``skipped: true`` and can tell).

OpenLineage names datasets as its naming convention says: a local file is namespace
``file``, name the absolute path; a URL is namespace ``scheme://host[:port]``, name the
path (without its leading ``/`` for object stores); the object is ``s3://bucket`` and its
key. Nothing here names a password, a query string or a fragment: those can be secrets.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import Asset, AssetAlias, BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ._hook import TransferSummary

__all__ = ["object_uri", "operator_lineage", "public_source", "record_asset_events",
           "report_hook_lineage", "resolve_lineage_target", "source_dataset"]

# Object stores whose URL path is a key, not a path: OpenLineage names it without the "/".
_OBJECT_STORES = frozenset({"s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "oss"})


def object_uri(bucket: str, key: str) -> str:
    """The asset URI of an S3 object, as the Amazon provider writes it (``s3://bucket/key``);
    a ``?`` or ``#`` in the key is percent-encoded so that the URI keeps the whole key."""
    return f"s3://{bucket}/{key.replace('?', '%3F').replace('#', '%23')}"


def _is_url(source: str) -> bool:
    scheme = urlsplit(source).scheme
    return len(scheme) > 1 and "://" in source  # "C:\\..." is no URL


def public_source(source: str) -> str:
    """``source`` as it may be shown to anyone: a URL without password, query or fragment."""
    if not _is_url(source):
        return source
    parts = urlsplit(source)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_dataset(source: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of a source: a path or an fsspec URL (of a
    chained URL such as ``simplecache::s3://...``, the last link, where the bytes are)."""
    source = source.rsplit("::", 1)[-1]
    if not _is_url(source) or source.startswith("file:"):
        path = urlsplit(source).path if source.startswith("file:") else source
        return "file", os.path.abspath(os.path.expanduser(path))
    parts = urlsplit(source)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username and parts.scheme in {"abfs", "abfss", "az"}:
        host = f"{parts.username}@{host}"  # container@account is the namespace there
    name = parts.path.lstrip("/") if parts.scheme in _OBJECT_STORES else parts.path or "/"
    return f"{parts.scheme}://{host}", name


def event_extra(summary: TransferSummary) -> dict[str, Any]:
    """The extra of the asset event for one uploaded object."""
    return {"size": summary.size, "etag": summary.etag,
            "source": public_source(summary.source), "skipped": summary.skipped}


def record_asset_events(outlets: list[Any], context: Context,
                        summary: TransferSummary) -> list[str]:
    """Attach the uploaded object to the task's outlets (see the module's doc); returns
    the names of the aliases it was attached to."""
    if not outlets:
        return []
    uri = object_uri(summary.bucket, summary.key)
    extra = event_extra(summary)
    events = context["outlet_events"]
    try_number = getattr(context.get("ti"), "try_number", 1) or 1
    news = not summary.skipped or try_number > 1
    attached = []
    for outlet in outlets:
        if isinstance(outlet, AssetAlias) and news:
            events[outlet].add(Asset(uri), extra=extra)
            attached.append(outlet.name)
        elif isinstance(outlet, Asset) and outlet.uri == Asset(uri).uri:
            events[outlet].extra.update(extra)
    return attached


def resolve_lineage_target(source: str, destination: str) -> tuple[str, str]:
    """The bucket and key ``source`` goes to (``destination`` may be a prefix)."""
    from ._hook import resolve_destination

    target = resolve_destination(source, destination)
    return target.bucket, target.key


def operator_lineage(source: str, bucket: str, key: str, *, size: int | None = None) -> Any:
    """The OpenLineage ``OperatorLineage`` of one upload: ``source`` in, the object out
    (with its size in bytes once it is known). Needs the OpenLineage provider."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.base import Dataset, OutputDataset, OutputDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    namespace, name = source_dataset(source)
    facets: dict[str, OutputDatasetFacet] = {} if size is None else {
        "outputStatistics": OutputStatisticsOutputDatasetFacet(size=size, fileCount=1)}
    return OperatorLineage(inputs=[Dataset(namespace=namespace, name=name)],
                           outputs=[OutputDataset(namespace=f"s3://{bucket}", name=key,
                                                  outputFacets=facets)])


def report_hook_lineage(hook: BaseHook, source: str, bucket: str, key: str) -> None:
    """Tell Airflow's hook lineage collector (read by the OpenLineage provider for tasks
    whose operator says nothing, a ``@task`` calling the hook) what went where."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    namespace, name = source_dataset(source)
    try:
        if namespace == "file":
            collector.add_input_asset(context=hook, scheme="file", asset_kwargs={"path": name})
        else:
            collector.add_input_asset(context=hook, uri=public_source(source.rsplit("::", 1)[-1]))
    except ValueError:
        pass  # a URL Airflow takes for no asset: the output is still worth reporting
    collector.add_output_asset(context=hook, uri=object_uri(bucket, key))
