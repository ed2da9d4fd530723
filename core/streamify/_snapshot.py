"""What a destination prefix held when a command listed it: one listing in place of a
``HeadObject`` per file for a command that uploads many files under that prefix.

Each file still decides for itself whether the object already is its source (size and
ETag, ``if_exists="skip_identical"``); the snapshot only answers "what is there" from the
listing. An object written after the listing is not seen, so the file is sent (the store
keeps the newer write), which ``skip_identical`` allows: at worst an identical object is
sent again. ``refuse_different`` must see the object as it is now and never uses one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ._control import ControlPlane, ObjectInfo, ObjectLister
from ._destination import Destination
from ._errors import StreamifyError

__all__ = ["PrefixSnapshot", "take_snapshot"]

OBJECTS_PER_FILE = 10
"""A listing is taken when the prefix holds at most this many objects per file to upload
(one listing request per 1,000 objects then costs at most one hundredth of a HEAD per
file); a fuller prefix is left to a HEAD per file."""


class PrefixSnapshot:
    """The completed objects under ``prefix`` as one listing found them."""

    def __init__(self, prefix: Destination, objects: dict[str, ObjectInfo]) -> None:
        self.prefix = prefix
        self._objects = objects

    def covers(self, destination: Destination) -> bool:
        """Whether the listing answers for ``destination`` (it is under the prefix)."""
        return (destination.bucket == self.prefix.bucket
                and destination.key.startswith(self.prefix.key))

    def get(self, destination: Destination) -> ObjectInfo | None:
        """The object at ``destination`` when the listing was taken, or None."""
        return self._objects.get(destination.key)

    def __len__(self) -> int:
        return len(self._objects)


def take_snapshot(control: ControlPlane, destinations: Sequence[Destination]
                  ) -> PrefixSnapshot | None:
    """List the longest prefix the ``destinations`` share, once.

    None, and each file asks for its own object, when the control plane cannot list,
    when they are in several buckets, when the prefix holds more than
    ``OBJECTS_PER_FILE`` objects per destination, or when it cannot be listed (an API key
    may upload where it may not list)."""
    if (not isinstance(control, ObjectLister) or len(destinations) < 2
            or len({d.bucket for d in destinations}) != 1):
        return None
    # Keys are strings, not paths: their longest common prefix, character by character.
    keys = [d.key for d in destinations]
    prefix = Destination(destinations[0].bucket, os.path.commonprefix(keys))  # noqa: RUF071
    at_most = OBJECTS_PER_FILE * len(destinations)
    objects: dict[str, ObjectInfo] = {}
    try:
        for listed in control.list_objects(prefix, page_size=min(1000, at_most + 1)):
            if len(objects) == at_most:
                return None
            objects[listed.destination.key] = ObjectInfo(size=listed.size, etag=listed.etag)
    except StreamifyError:
        return None
    return PrefixSnapshot(prefix, objects)
