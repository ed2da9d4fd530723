"""What only a real S3 server checks: Content-MD5 (BadDigest) and presigned URL expiry.

Faults are injected at the engine's own seams (the ``PartSender`` on the data path, the
control plane that signs URLs), so the server's real answers drive the real classifier.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from streamify import (
    Destination,
    Event,
    PartSender,
    PartToSign,
    Retrying,
    S3ControlPlane,
    SignedPart,
    StateStore,
    UploadConfig,
    Uploader,
)

from tests.conftest import Bucket
from tests.helpers import make_file
from tests.reals3._support import MiB, file_sha256, object_sha256

pytestmark = pytest.mark.reals3

PART = 5 * MiB
SIZE = 4 * PART + 123


class CorruptingSender(PartSender):
    """Flips one bit of one part's body on its first attempt, keeping the Content-MD5 that
    was signed for the true body: what a faulty NIC, proxy or memory would do."""

    def __init__(self, number: int, *, pool_size: int) -> None:
        super().__init__(pool_size=pool_size)
        self.number = number
        self.attempts: Counter[int] = Counter()
        self.md5_headers: list[str] = []

    def put(self, signed: SignedPart, body: bytes,
            on_progress: Callable[[int], None] | None = None) -> str:
        self.attempts[signed.number] += 1
        self.md5_headers.append(signed.headers.get("Content-MD5", ""))
        if signed.number == self.number and self.attempts[signed.number] == 1:
            damaged = bytearray(body)
            damaged[len(damaged) // 2] ^= 0x01
            body = bytes(damaged)
        return super().put(signed, body, on_progress)


class StallingControlPlane(S3ControlPlane):
    """Signs part ``number``'s first URL to expire in 1 s and stalls past that before handing
    it over, like a worker descheduled (a laptop lid closed) between signing and sending."""

    def __init__(self, number: int, *, endpoint_url: str) -> None:
        super().__init__(endpoint_url=endpoint_url, region="us-east-1")
        self.number = number
        self.expiries: list[tuple[int, int]] = []

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        signed = []
        for part in parts:
            first = part.number == self.number and all(
                n != self.number for n, _ in self.expiries)
            expiry = 1 if first else expires_in
            self.expiries.append((part.number, expiry))
            signed += super().sign_parts(destination, upload_id, [part], expires_in=expiry)
            if first:
                time.sleep(2.5)
        return signed


def _upload(bucket: Bucket, source: Path, key: str, tmp_path: Path, *,
            control: S3ControlPlane, sender: PartSender | None = None
            ) -> tuple[list[Event], int]:
    uploader = Uploader(source, bucket.url(key), control=control, sender=sender,
                        config=UploadConfig(part_size=PART, concurrency=2, backoff_base=0.05),
                        state=StateStore(tmp_path / "state"))
    events: list[Event] = []
    uploader.subscribe(events.append)
    try:
        result = uploader.run()
    finally:
        uploader.close()
    assert result.status == "completed"
    return events, result.bytes_sent


def test_corrupted_part_body_is_rejected_with_bad_digest_and_sent_again(
        real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "scan.tiff", SIZE, seed=21)
    sender = CorruptingSender(2, pool_size=2)
    control = S3ControlPlane(endpoint_url=real_bucket.endpoint, region="us-east-1")

    events, bytes_sent = _upload(real_bucket, source, "scans/scan.tiff", tmp_path,
                                 control=control, sender=sender)

    assert all(sender.md5_headers), "every part must carry its Content-MD5"
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [(e.number, e.attempt) for e in retries] == [(2, 1)]
    assert retries[0].reason.startswith("retry: HTTP 400 BadDigest"), retries[0].reason
    assert sender.attempts == Counter({1: 1, 2: 2, 3: 1, 4: 1, 5: 1})
    assert bytes_sent == SIZE + PART  # the rejected attempt was sent too
    assert object_sha256(real_bucket, "scans/scan.tiff") == file_sha256(source)


def test_expired_presigned_url_is_signed_again_transparently(
        real_bucket: Bucket, tmp_path: Path) -> None:
    source = make_file(tmp_path / "scan.tiff", SIZE, seed=22)
    control = StallingControlPlane(3, endpoint_url=real_bucket.endpoint)

    events, _ = _upload(real_bucket, source, "scans/scan.tiff", tmp_path, control=control)

    retries = [e for e in events if isinstance(e, Retrying)]
    assert [(e.number, e.attempt) for e in retries] == [(3, 1)]
    assert retries[0].reason.startswith("resign: HTTP 403"), retries[0].reason
    assert [e for n, e in control.expiries if n == 3] == [1, UploadConfig().url_expiry]
    assert object_sha256(real_bucket, "scans/scan.tiff") == file_sha256(source)
