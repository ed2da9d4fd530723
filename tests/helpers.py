"""Small helpers shared by the test modules."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from streamify import PartSender, SignedPart

if TYPE_CHECKING:
    from tests.conftest import Bucket
    from tests.wireproxy import WireProxy


def make_file(path: Any, size: int, seed: int = 0) -> Any:
    """Write ``size`` pseudo-random bytes (fast, reproducible) to ``path``."""
    rng = random.Random(seed)
    block = rng.randbytes(1024 * 1024)
    with open(path, "wb") as fh:
        written = 0
        counter = 0
        while written < size:
            chunk = (counter.to_bytes(8, "big") + block)[: min(len(block), size - written)]
            fh.write(chunk)
            written += len(chunk)
            counter += 1
    return path


class RecordingSender(PartSender):
    """A real data-path client that also records every part PUT: its signed URL and
    headers, and its body."""

    def __init__(self, pool_size: int = 4) -> None:
        super().__init__(pool_size=pool_size)
        self.puts: list[tuple[SignedPart, bytes]] = []
        self.lock = threading.Lock()

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        with self.lock:
            self.puts.append((signed, body))
        return super().put(signed, body, on_progress)


def assert_checksums_signed_and_sent(puts: list[tuple[SignedPart, bytes]],
                                     algorithm: str) -> None:
    """Every PUT carried the body's ``algorithm`` checksum, computed here independently,
    as a header that is signed into its URL (so storage that checks it refuses a mismatch,
    and no one can swap it). Servers that recompute (moto) or ignore (radosgw) the header
    cannot show a wrong value; this can."""
    digests: dict[str, Callable[[bytes], bytes]] = {
        "sha256": lambda b: hashlib.sha256(b).digest(),
        "sha1": lambda b: hashlib.sha1(b).digest(),
        "crc32": lambda b: zlib.crc32(b).to_bytes(4, "big"),
    }
    header = f"x-amz-checksum-{algorithm}"
    assert puts, "no part was sent"
    for signed, body in puts:
        assert signed.headers.get(header) == base64.b64encode(digests[algorithm](body)).decode()
        query = parse_qs(urlsplit(signed.url).query)
        assert header in query["X-Amz-SignedHeaders"][0].split(";"), signed.url


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of a local file, read a MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_object(bucket: Bucket, key: str) -> str:
    """The SHA-256 of an object as storage gives it back, read a MiB at a time."""
    digest = hashlib.sha256()
    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


def parts_held_at_once(proxy: WireProxy, names: tuple[str, ...], expected: int,
                       start: Callable[[], Callable[[], None]]) -> list[str]:
    """Run an upload (``start()`` begins it and returns what waits for its end) while the
    proxy holds every PUT of a file whose name starts with one of ``names``; return the
    names of those that were in flight at once: the first ``expected`` (waited for as long
    as they take), and any that comes within a second after them.

    Only the uploader knows when it has stopped starting files, so that second is what
    lets one beyond the budget show up here; ``tests/unit/test_memory_budget.py`` proves
    the budget's rules without a window."""
    from tests.wireproxy import part_puts

    arrived: list[str] = []
    lock = threading.Lock()
    all_expected, one_more = threading.Event(), threading.Event()

    def held(method: str, target: str) -> bool:
        if not (part_puts(method, target) and target.split("/")[-1].startswith(names)):
            return False
        # Called by the proxy once per request, as it arrives (on its connection's thread).
        with lock:
            arrived.append(target.split("/")[-1].split("?")[0])
            count = len(arrived)
        if count == expected:
            all_expected.set()
        elif count > expected:
            one_more.set()
        return True

    proxy.hold_requests(match=held)
    finish = start()
    try:
        assert all_expected.wait(60), f"only {arrived} came"
        one_more.wait(1.0)
        with lock:
            names_held = list(arrived)
    finally:
        proxy.release()
        finish()
    return sorted(names_held)
