"""``collect_stale_uploads`` against moto: what it aborts, and which resume states it keeps."""

from __future__ import annotations

from pathlib import Path

from streamify import (
    Destination,
    Event,
    Progress,
    S3ControlPlane,
    StateStore,
    UploadConfig,
    Uploader,
    collect_stale_uploads,
)

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024
HOUR = 3600.0


def test_aborting_an_abandoned_upload_keeps_the_state_of_another_to_the_same_key(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    # Ours: paused after its first part, its state recorded just now, so not stale.
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    plane = S3ControlPlane(endpoint_url=moto_bucket.endpoint)
    store = StateStore(state_dir)
    uploader = Uploader(path, moto_bucket.url("v.mp4"), control=plane, state=store,
                        config=UploadConfig(part_size=5 * MiB, concurrency=1))

    def pause_after_the_first_part(event: Event) -> None:
        if isinstance(event, Progress) and event.bytes_done >= 5 * MiB:
            uploader.pause()

    uploader.subscribe(pause_after_the_first_part)
    with uploader:
        ours = uploader.run()
    assert ours.status == "paused"
    # Another tool's upload to the same key, abandoned with no part: stale (moto dates
    # every upload 2010, and nothing was written to it since).
    theirs = moto_bucket.client.create_multipart_upload(
        Bucket=moto_bucket.name, Key="v.mp4")["UploadId"]

    aborted = collect_stale_uploads(plane, Destination(moto_bucket.name, ""), store,
                                    older_than=HOUR, include_foreign=True)

    assert [u.upload_id for u in aborted] == [theirs]
    assert [u["UploadId"] for u in moto_bucket.open_uploads()] == [ours.upload_id]
    kept = store.load(plane.endpoint, Destination(moto_bucket.name, "v.mp4"))
    assert kept is not None and kept.upload_id == ours.upload_id
    plane.close()


def test_aborting_our_own_stale_upload_removes_its_state(
        tmp_path: Path, moto_bucket: Bucket, state_dir: str) -> None:
    path = make_file(tmp_path / "v.mp4", 12 * MiB)
    plane = S3ControlPlane(endpoint_url=moto_bucket.endpoint)
    store = StateStore(state_dir)
    uploader = Uploader(path, moto_bucket.url("v.mp4"), control=plane, state=store,
                        config=UploadConfig(part_size=5 * MiB, concurrency=1))
    uploader.subscribe(lambda event: uploader.pause())
    with uploader:
        ours = uploader.run()
    assert ours.status == "paused"

    aborted = collect_stale_uploads(plane, Destination(moto_bucket.name, ""), store,
                                    older_than=0)

    assert [u.upload_id for u in aborted] == [ours.upload_id]
    assert moto_bucket.open_uploads() == []
    assert store.all() == []
    plane.close()
