"""Disk and clock faults during a run: the resume-state directory filling up or turning
read-only mid-run, a presigned URL that expires before its PUT reaches storage, and a
source on an fsspec file system that goes away mid-upload and comes back. Each run goes
on or stops with one clear line (what, where, what to do); nothing S3 already holds is
lost, and a later run resumes without sending a held part again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamify
from streamify import SourceError, StateStoreError, TransferError, UploadConfig

from tests.faults._disk import fill, remount, tmpfs
from tests.faults._stack import Stack, object_sha256, open_stack, run_upload, sha256_file
from tests.helpers import make_file
from tests.wireproxy import Match, part_puts

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 3 * PART + 4321  # four parts
CONFIG = UploadConfig(part_size=PART, concurrency=1, read_timeout=5.0, backoff_base=0.05,
                      backoff_max=0.2)


def _identical(stack: Stack, key: str, path: Path) -> bool:
    return object_sha256(stack.client, stack.bucket, key) == sha256_file(path)


def _on_part(number: int, act: Callable[[], None]) -> Callable[[streamify.Event], None]:
    """An event handler that calls ``act`` once part ``number`` is done."""

    def on_event(event: streamify.Event) -> None:
        if isinstance(event, streamify.PartDone) and event.number == number:
            act()

    return on_event


def _while_held(stack: Stack, match: Match, act: Callable[[], None]) -> threading.Thread:
    """Hold the next ``match``ing request at the S3 proxy, ``act()`` while it waits, then
    let it go: the fault lands between two steps of the run."""
    stack.s3.hold_requests(match=match)

    def run() -> None:
        deadline = time.monotonic() + 20
        while stack.s3.held == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            act()
        finally:
            stack.s3.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _create(method: str, target: str) -> bool:
    return method == "POST" and "uploads" in target.split("?", 1)[-1].split("&")


def _list_uploads(method: str, target: str) -> bool:
    return method == "GET" and "uploads" in target.split("?", 1)[-1].split("&")


# ---------------------------------------------------------------------- the state directory
TROUBLE = {"full": "is full", "read-only": "not writable"}
"""What goes wrong with the state directory, and what the line about it says."""


def _spoil(state: Path, trouble: str) -> Callable[[], None]:
    return (lambda: fill(state)) if trouble == "full" else (lambda: remount(state, "ro"))


def _mend(state: Path, trouble: str) -> None:
    if trouble == "full":
        (state / "filler").unlink()
    else:
        remount(state, "rw")


@pytest.mark.parametrize("trouble", list(TROUBLE))
def test_state_directory_spoilt_while_the_upload_is_created(
        direct_stack: Stack, workdir: Path, trouble: str) -> None:
    """The directory fills up or turns read-only between the check that the state can be
    written and the write: the upload just created is aborted (one we cannot track is not
    left behind), not a byte was sent, and the line names the directory, says what is
    wrong with it and what to do."""
    stack = direct_stack
    path = make_file(workdir / "v.bin", SIZE, seed=61)
    key = stack.key(f"disk/create-{trouble}.bin")
    with tmpfs(workdir / "state") as state:
        filling = _while_held(stack, _create, _spoil(state, trouble))
        with pytest.raises(StateStoreError) as refused:
            run_upload(stack, path, key, state, CONFIG)
        filling.join()
        message = str(refused.value)
        assert "\n" not in message, message
        for said in (str(state), TROUBLE[trouble], "rerun", "nothing was sent"):
            assert said in message, message
        assert stack.s3.counts().part_bytes == 0
        assert stack.open_uploads() == []
        _mend(state, trouble)
        result, _ = run_upload(stack, path, key, state, CONFIG)
        assert result.status == "completed"
        assert _identical(stack, key, path)


@pytest.mark.parametrize("trouble", list(TROUBLE))
def test_state_directory_spoilt_when_a_found_upload_saves_its_state(
        direct_stack: Stack, workdir: Path, trouble: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """An upload found by listing (its state lost) is saved anew; the directory fills up
    or turns read-only while S3 is listed. The state is only a hint: the run goes on,
    resumes what S3 holds and says in one line what is wrong with the directory and that
    a rerun would find the upload again."""
    stack = direct_stack
    path = make_file(workdir / "v.bin", SIZE, seed=62)
    key = stack.key(f"disk/found-{trouble}.bin")
    with tmpfs(workdir / "state") as state:
        result, _ = run_upload(stack, path, key, state, CONFIG, pause_after=2)
        assert result.status == "paused"
        upload_id = stack.open_id(key)
        for document in state.glob("*.json"):
            document.unlink()
        filling = _while_held(stack, _list_uploads, _spoil(state, trouble))
        before = stack.s3.counts()
        with caplog.at_level(logging.WARNING, logger="streamify"):
            result, _ = run_upload(stack, path, key, state, CONFIG)
        filling.join()
        assert (result.status, result.upload_id, result.bytes_resumed) == (
            "completed", upload_id, 2 * PART)
        sent = (stack.s3.counts() - before).parts
        assert set(sent) == {(upload_id, 3), (upload_id, 4)}, sent  # nothing held resent
        assert _identical(stack, key, path)
        lines = [r.getMessage() for r in caplog.records if "resume state" in r.getMessage()]
        assert len(lines) == 1, lines
        for said in (str(state), TROUBLE[trouble], "rerun", upload_id):
            assert said in lines[0], lines[0]


@pytest.mark.parametrize("trouble", list(TROUBLE))
def test_state_directory_full_or_read_only_while_parts_are_sent(
        direct_stack: Stack, workdir: Path, trouble: str, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing is written to the state while parts go: the run completes. A state that
    can no longer be removed is left with a warning naming it; once the directory is
    writable again, a rerun finds the object complete, sends nothing and clears it."""
    stack = direct_stack
    path = make_file(workdir / "v.bin", SIZE, seed=63)
    key = stack.key(f"disk/{trouble}.bin")
    with tmpfs(workdir / "state") as state:
        with caplog.at_level(logging.WARNING, logger="streamify"):
            result, _ = run_upload(stack, path, key, state, CONFIG,
                                   on_event=_on_part(1, _spoil(state, trouble)))
        assert result.status == "completed"
        assert _identical(stack, key, path)
        left = list(state.glob("*.json"))
        lines = [r.getMessage() for r in caplog.records if "resume state" in r.getMessage()]
        if trouble == "full":
            assert (left, lines) == ([], [])  # a full file system still lets a file go
            return
        assert len(left) == 1 and len(lines) == 1, (left, lines)
        for said in (str(left[0]), TROUBLE[trouble], "remove the file"):
            assert said in lines[0], lines[0]
        _mend(state, trouble)
        before = stack.s3.counts()
        again, _ = run_upload(stack, path, key, state, CONFIG)
        assert again.status == "completed"
        assert (stack.s3.counts() - before).part_bytes == 0
        assert list(state.glob("*.json")) == []  # the rerun cleared it
        assert _identical(stack, key, path)


# ---------------------------------------------------------------------- the clock
EXPIRY = 4
"""Seconds a presigned URL lives in the clock tests: storage's clock passes it while the
proxy keeps the PUT (``delay_requests``), as after a jump of the clock past the expiry.
``X-Amz-Date`` is in whole seconds, so a URL lives between ``EXPIRY - 1`` and ``EXPIRY``
seconds: at 1 s a PUT that a loaded machine took a few hundred ms to get to storage
expired on its own now and then (a second re-sign the tests did not ask for)."""
CLOCK_CONFIG = UploadConfig(part_size=PART, concurrency=1, url_expiry=EXPIRY,
                            read_timeout=10.0, backoff_base=0.05, backoff_max=0.2)
LATE = EXPIRY + 1.5


def _part_puts(stack: Stack) -> int:
    return sum(part_puts(method, target) for method, target in stack.s3.requests)


def _sign_calls(stack: Stack) -> int:
    """Sign calls the API service answered (through the API proxy)."""
    return sum(method == "POST" and target.split("?")[0].endswith("/sign")
               for method, target in stack.api.requests)


@pytest.fixture(params=["direct", "api"])
def real_clock_stack(request: pytest.FixtureRequest,
                     real_s3_endpoint: str) -> Iterator[tuple[Stack, str]]:
    """The real S3 server (it checks a URL's expiry), straight or through the service."""
    mode: str = request.param
    with open_stack(real_s3_endpoint, services=int(mode == "api")) as stack:
        yield stack, mode


def test_a_wall_clock_that_jumps_a_day_forward_and_back_changes_nothing(
        direct_stack: Stack, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits, the retry budget, the deadline and a URL's age are measured on the monotonic
    clock: the wall clock (``time.time``, as NTP or a resumed VM moves it) jumping a day
    ahead mid-run, then back, neither ends the run at its deadline nor makes a URL look
    expired. Not a request more than the parts need."""
    stack = direct_stack
    path = make_file(workdir / "v.bin", SIZE, seed=67)
    key = stack.key("clock/wall.bin")
    real, offset = time.time, [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def jump(seconds: float) -> Callable[[], None]:
        return lambda: offset.__setitem__(0, seconds)

    forward, back = _on_part(1, jump(86400.0)), _on_part(3, jump(0.0))

    def on_event(event: streamify.Event) -> None:
        forward(event)
        back(event)

    result, events = run_upload(stack, path, key, workdir / "state",
                                CONFIG.replace(deadline=600.0), on_event=on_event)

    assert result.status == "completed"
    assert offset[0] == 0.0  # it jumped, and back
    assert _part_puts(stack) == result.parts
    assert not [e for e in events if isinstance(e, streamify.Retrying)]
    assert _identical(stack, key, path)


def test_a_url_that_expired_on_the_way_is_signed_again_once(
        real_clock_stack: tuple[Stack, str], workdir: Path) -> None:
    """Storage (a real one: it checks the expiry) refuses the late PUT; the part is signed
    again and sent at once: one PUT and one sign call more than the parts need."""
    stack, mode = real_clock_stack
    path = make_file(workdir / "v.bin", 2 * PART + 99, seed=64)
    key = stack.key("clock/once.bin")
    stack.s3.delay_requests(LATE, match=part_puts)

    result, events = run_upload(stack, path, key, workdir / "state", CLOCK_CONFIG, mode=mode)

    assert result.status == "completed"
    assert stack.s3.faults["delay"] == 1 and stack.s3.pending() == 0
    assert _part_puts(stack) == result.parts + 1
    if mode == "api":  # one part at a time: a sign call per PUT
        assert _sign_calls(stack) == result.parts + 1
    retries = [e for e in events if isinstance(e, streamify.Retrying)]
    assert len(retries) == 1 and retries[0].reason.startswith("resign"), retries
    assert _identical(stack, key, path)


def test_urls_that_keep_expiring_on_the_way_stop_with_the_reason_not_a_storm(
        real_clock_stack: tuple[Stack, str], workdir: Path) -> None:
    """Every PUT arrives after its URL expired: the part is signed again once, then the run
    stops and says why (the expiry, not the credentials), with no storm of requests;
    once PUTs arrive in time again, a rerun resumes."""
    stack, mode = real_clock_stack
    path = make_file(workdir / "v.bin", 2 * PART + 99, seed=65)
    key = stack.key("clock/storm.bin")
    state = workdir / "state"
    stack.s3.delay_requests(LATE, count=100, match=part_puts)

    with pytest.raises(TransferError) as stopped:
        run_upload(stack, path, key, state, CLOCK_CONFIG, mode=mode)

    stack.s3.disarm()
    assert _part_puts(stack) == 2  # the first PUT and the one signed again
    if mode == "api":
        assert _sign_calls(stack) == 2
    message = str(stopped.value)
    assert "\n" not in message, message
    for said in ("part 1", f"{EXPIRY} s expiry", "url_expiry", "rerun"):
        assert said in message, message
    upload_id = stack.open_id(key)
    result, _ = run_upload(stack, path, key, state, CLOCK_CONFIG, mode=mode)
    assert (result.status, result.upload_id) == ("completed", upload_id)
    assert _identical(stack, key, path)


# ---------------------------------------------------------------------- the source
@pytest.mark.parametrize("gone_after", [2, 4],
                         ids=["while parts are read", "before the final check"])
def test_an_fsspec_source_that_goes_away_stops_the_run_and_a_rerun_resumes(
        direct_stack: Stack, workdir: Path, gone_after: int) -> None:
    """A source read through fsspec (``local://``, as a network file system would be)
    is renamed away once ``gone_after`` parts are done, then put back: the run stops with
    one line naming the file, and the next run sends only what S3 does not hold."""
    stack = direct_stack
    path = make_file(workdir / "v.bin", SIZE, seed=66)
    away = workdir / "moved-away.bin"
    url = f"local://{path}"
    key = stack.key(f"source/gone-{gone_after}.bin")
    state = workdir / "state"

    with pytest.raises(SourceError) as stopped:
        run_upload(stack, url, key, state, CONFIG,
                   on_event=_on_part(gone_after, lambda: path.rename(away)))

    message = str(stopped.value)
    assert "\n" not in message, message
    for said in (url, "gone", "rerun to resume"):
        assert said in message, message
    upload_id = stack.open_id(key)
    away.rename(path)
    before = stack.s3.counts()
    result, _ = run_upload(stack, url, key, state, CONFIG)
    assert (result.status, result.upload_id, result.resumed) == ("completed", upload_id, True)
    assert result.bytes_resumed == min(gone_after * PART, SIZE)
    sent = (stack.s3.counts() - before).parts
    assert set(sent) == {(upload_id, n) for n in range(gone_after + 1, 5)}, sent
    assert _identical(stack, key, path)
