"""``UploadBatch``: pause or cancel every file of a batch, from an event of one of them.

The batch runs in this process against moto's server, as the CLI and fsspec's ``put`` run
it; what S3 holds afterwards is what a user would see.
"""

from __future__ import annotations

from pathlib import Path

from streamify import (
    BatchFile,
    BatchOutcome,
    Destination,
    Event,
    PartDone,
    S3ControlPlane,
    StateStore,
    UploadBatch,
    UploadCancelledError,
    UploadConfig,
    Uploader,
)

from tests.conftest import Bucket
from tests.helpers import make_file

MiB = 1024 * 1024
CONFIG = UploadConfig(part_size=5 * MiB, concurrency=1)


def _run(bucket: Bucket, folder: Path, state: StateStore, stop: str | None
         ) -> BatchOutcome:
    """Upload every file of ``folder`` to ``in/``, two at a time; ``stop`` ("pause" or
    "cancel") the whole batch when the first part of any file is done."""
    control = S3ControlPlane(endpoint_url=bucket.endpoint)

    def on_start(file: BatchFile, uploader: Uploader) -> None:
        def stop_at_first_part(event: Event) -> None:
            if isinstance(event, PartDone) and stop == "pause":
                batch.pause()
            elif isinstance(event, PartDone):
                batch.cancel()

        if stop is not None:
            uploader.subscribe(stop_at_first_part)

    batch = UploadBatch(state=state, config=CONFIG, jobs=2, on_start=on_start)
    try:
        return batch.run([BatchFile(str(path), Destination.parse(bucket.url(f"in/{path.name}")),
                                    control, CONFIG) for path in sorted(folder.iterdir())])
    finally:
        control.close()


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for n in range(6):
        make_file(folder / f"clip-{n}.mov", 11 * MiB, seed=n)  # three parts each
    return folder


def _objects(bucket: Bucket) -> list[str]:
    listed = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix="in/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_cancel_stops_every_file_and_aborts_their_uploads(
        moto_bucket: Bucket, tmp_path: Path) -> None:
    outcome = _run(moto_bucket, _folder(tmp_path), StateStore(tmp_path / "state"), "cancel")
    assert outcome.stopped
    # The two files running were cancelled; none of the four behind them started.
    assert len(outcome.outcomes) == 2, outcome.outcomes
    assert all(isinstance(o.error, UploadCancelledError) for o in outcome.outcomes)
    assert moto_bucket.open_uploads() == []
    assert _objects(moto_bucket) == []


def test_pause_keeps_what_was_sent_and_a_repeat_finishes_every_file(
        moto_bucket: Bucket, tmp_path: Path) -> None:
    folder, state = _folder(tmp_path), StateStore(tmp_path / "state")
    paused = _run(moto_bucket, folder, state, "pause")
    assert paused.stopped
    assert [o.result.status for o in paused.outcomes if o.result] == ["paused", "paused"]
    assert len(moto_bucket.open_uploads()) == 2

    again = _run(moto_bucket, folder, state, None)

    assert not again.stopped and again.failures == []
    resumed = [o.result for o in again.outcomes if o.result and o.result.resumed]
    assert len(resumed) == 2 and all(r.bytes_resumed >= 5 * MiB for r in resumed)
    assert moto_bucket.open_uploads() == []
    for path in folder.iterdir():
        assert moto_bucket.read(f"in/{path.name}") == path.read_bytes()
