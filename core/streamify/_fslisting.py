"""What ``streamify://`` shows through the API service: the caller's completed objects.

The service offers one object's size and ETag (``GET /v1/objects?key=``) and the caller's
completed objects under a prefix (``GET /v1/objects?prefix=``), nothing else; from those
two this answers ``ls``, ``info``, ``exists``, ``isdir`` and ``find`` as direct mode (s3fs)
answers them for the caller's prefix. Paths are ``bucket/key``, without the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._destination import Destination
from ._errors import AccessDeniedError

if TYPE_CHECKING:
    from ._httpcontrol import HttpControlPlane, ListedObject

__all__ = ["ServiceListing"]

_T = TypeVar("_T")


class ServiceListing:
    """Listings of the caller's own completed objects, from the API service at
    ``api_url``; ``service`` gives its control plane (created on first use)."""

    def __init__(self, service: Callable[[], HttpControlPlane], api_url: str) -> None:
        self._service = service
        self._api_url = api_url

    def ls(self, path: str, detail: bool) -> list[Any]:
        bucket, key = _split(path)
        found = self._object(bucket, key)
        if found is not None:
            entries = [found]
        else:
            entries = self._children(bucket, key)
            if not entries:
                raise FileNotFoundError(f"streamify://{path}: no object at or under this path")
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str) -> dict[str, Any]:
        bucket, key = _split(path)
        found = self._object(bucket, key)
        if found is not None:
            return found
        if next(self._listing(bucket, key), None) is not None:
            return {"name": path.rstrip("/"), "size": 0, "type": "directory"}
        raise FileNotFoundError(f"streamify://{path}: no object at or under this path")

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def isdir(self, path: str) -> bool:
        try:
            return bool(self.info(path)["type"] == "directory")
        except (FileNotFoundError, PermissionError):
            return False

    def find(self, path: str, maxdepth: int | None, withdirs: bool, detail: bool) -> Any:
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        bucket, key = _split(path)
        found: dict[str, dict[str, Any]] = {}
        single = self._object(bucket, key)
        if single is not None:
            found[single["name"]] = single
        else:
            base = path.rstrip("/")
            for listed in self._listing(bucket, key):
                relative = listed.destination.key[len(_folder(key)):]
                folders = relative.split("/")[:-1]
                if withdirs:
                    for depth in range(1, len(folders) + 1):
                        if maxdepth is None or depth <= maxdepth:
                            name = "/".join([base, *folders[:depth]])
                            found[name] = {"name": name, "size": 0, "type": "directory"}
                if relative and (maxdepth is None or len(folders) < maxdepth):
                    entry = _listed_entry(listed)
                    found[entry["name"]] = entry
            if withdirs and found:
                found[base] = {"name": base, "size": 0, "type": "directory"}
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    def _object(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object at ``key`` (``None``: none, or ``key`` names a folder)."""
        if not key or key.endswith("/"):
            return None
        try:
            found = self._service().head(Destination(bucket, key))
        except AccessDeniedError:
            # "users/alice" is outside the prefix "users/alice/" as an object, yet it is
            # that folder: the listing decides, and refuses what is truly another's.
            return None
        if found is None:
            return None
        return {"name": f"{bucket}/{key}", "size": found.size, "type": "file",
                "ETag": found.etag}

    def _listing(self, bucket: str, key: str) -> Iterator[ListedObject]:
        """Every completed object under the folder ``key`` (``""``: the bucket)."""
        listed = self._service().list_objects(Destination(bucket, _folder(key)))
        first = self._denied_as_permission(lambda: next(listed, None), bucket, key)
        if first is not None:
            yield first
            yield from listed

    def _children(self, bucket: str, key: str) -> list[dict[str, Any]]:
        """What ``ls`` shows of the folder ``key``: its objects and its sub-folders."""
        entries: dict[str, dict[str, Any]] = {}
        for listed in self._listing(bucket, key):
            relative = listed.destination.key[len(_folder(key)):]
            if not relative:
                continue  # a folder marker: the folder itself
            child, slash, _ = relative.partition("/")
            name = f"{bucket}/{_folder(key)}{child}"
            if slash:
                entries[name] = {"name": name, "size": 0, "type": "directory"}
            else:
                entries[name] = _listed_entry(listed)
        return [entries[name] for name in sorted(entries)]

    def _denied_as_permission(self, call: Callable[[], _T], bucket: str, key: str) -> _T:
        try:
            return call()
        except AccessDeniedError as exc:
            raise PermissionError(
                f"streamify://{bucket}/{key}: the API service at {self._api_url} lists and "
                f"reads only your own prefix ({exc}); to see the rest of the bucket, "
                "construct StreamifyFileSystem(endpoint_url=..., key=..., secret=...) with "
                "S3 credentials") from exc


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


def _folder(key: str) -> str:
    """``key`` as a folder prefix: ``""`` for the bucket, else ending with ``/``."""
    return key if not key or key.endswith("/") else key + "/"


def _listed_entry(listed: ListedObject) -> dict[str, Any]:
    return {"name": f"{listed.destination.bucket}/{listed.destination.key}",
            "size": listed.size, "type": "file", "ETag": listed.etag,
            "LastModified": datetime.fromtimestamp(listed.last_modified, tz=UTC)}
