"""Control calls retried under the upload's budget (``RetryingControlPlane``), with a
recorded control plane, a fake clock and no sleeping."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from streamify import UploadConfig
from streamify._calls import RetryingControlPlane
from streamify._control import (
    ListedObject,
    ObjectInfo,
    OpenUpload,
    PartToSign,
    SignedPart,
    UploadedPart,
)
from streamify._destination import Destination
from streamify._errors import AccessDeniedError, EndpointError, StreamifyError
from streamify._events import Retrying, Subscribers
from streamify._retry import RetryBudget
from streamify._sending import Flow, Stopped

HERE = Destination("bucket", "video.mp4")


class Scripted:
    """A control plane whose every call takes the next outcome of a script: an exception
    to raise or a value to return."""

    sign_linger = 0.0
    endpoint = "http://scripted"

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    def _next(self, name: str) -> Any:
        self.calls.append(name)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def create_upload(self, destination: Destination, *, content_type: str,
                      metadata: Mapping[str, str], checksum: str,
                      size: int | None = None) -> str:
        return str(self._next("create"))

    def sign_parts(self, destination: Destination, upload_id: str,
                   parts: Sequence[PartToSign], *, expires_in: int) -> list[SignedPart]:
        return list(self._next("sign"))

    def list_parts(self, destination: Destination, upload_id: str) -> list[UploadedPart]:
        return list(self._next("list_parts"))

    def list_uploads(self, destination: Destination) -> list[OpenUpload]:
        return list(self._next("list_uploads"))

    def complete(self, destination: Destination, upload_id: str,
                 parts: Sequence[UploadedPart]) -> ObjectInfo:
        info: ObjectInfo = self._next("complete")
        return info

    def abort(self, destination: Destination, upload_id: str) -> None:
        self._next("abort")

    def head(self, destination: Destination) -> ObjectInfo | None:
        info: ObjectInfo | None = self._next("head")
        return info

    def list_objects(self, prefix: Destination, *, page_size: int = 1000
                     ) -> Iterator[ListedObject]:
        for item in self._next("list_objects"):
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def down(status: int = 503, *, connected: bool = True, retry_after: float | None = None
         ) -> EndpointError:
    return EndpointError("unavailable", transient=True, status=status, connected=connected,
                         retry_after=retry_after)


def wrap(plane: Scripted, clock: Clock, config: UploadConfig | None = None,
         **kwargs: Any) -> RetryingControlPlane:
    return RetryingControlPlane(plane, config or UploadConfig(), clock=clock,
                                sleep=clock.sleep, **kwargs)


def test_a_control_call_is_retried_until_it_goes_through() -> None:
    clock = Clock()
    info = ObjectInfo(size=1, etag="e")
    plane = Scripted(down(), down(connected=False), down(502), info)
    events: list[Any] = []
    subscribers = Subscribers()
    subscribers.add(events.append)

    assert wrap(plane, clock, subscribers=subscribers).complete(HERE, "u", []) == info
    assert plane.calls == ["complete"] * 4
    assert len(clock.slept) == 3
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [e.attempt for e in retries] == [1, 2, 3]
    assert all(e.number == 0 and e.what == f"completing upload to {HERE}" for e in retries)


def test_an_outage_of_a_minute_is_ridden_out_with_the_default_budget() -> None:
    """Whatever the jitter draws, the default budget outlasts 60 s of failures."""
    for seed in range(200):
        budget = UploadConfig().retry_budget()
        budget.rng = random.Random(seed)
        now = 0.0
        while now < 60.0:
            delay = budget.next_delay(now)
            assert delay is not None, f"seed {seed}: gave up after {now:.1f} s"
            now += delay + 0.01


def test_the_budget_ends_at_its_time_limit_and_says_how_long_it_tried() -> None:
    clock = Clock()
    config = UploadConfig(retry_for=10.0, backoff_base=1.0, backoff_max=4.0)
    plane = Scripted(*[down() for _ in range(100)])

    with pytest.raises(EndpointError, match=r"tried \d+ times over 1\d s") as caught:
        wrap(plane, clock, config).list_parts(HERE, "u")
    assert caught.value.exit_code == 7
    assert 10.0 <= clock.now <= 10.0 + 1e-9
    assert len(plane.calls) < 100


def test_the_budget_ends_at_its_attempts() -> None:
    clock = Clock()
    plane = Scripted(*[down() for _ in range(10)])
    with pytest.raises(EndpointError):
        wrap(plane, clock, UploadConfig(max_attempts=3)).head(HERE)
    assert len(plane.calls) == 3


def test_retry_after_is_honoured() -> None:
    clock = Clock()
    plane = Scripted(down(429, retry_after=7.0), ObjectInfo(size=1, etag="e"))
    wrap(plane, clock).head(HERE)
    assert clock.slept[0] >= 7.0


@pytest.mark.parametrize("error", [
    EndpointError("tls", transient=False),
    AccessDeniedError("denied"),
    StreamifyError("S3 said NoSuchWidget"),
])
def test_what_is_not_transient_is_raised_at_once(error: StreamifyError) -> None:
    clock = Clock()
    plane = Scripted(error)
    with pytest.raises(type(error)):
        wrap(plane, clock).list_uploads(HERE)
    assert plane.calls == ["list_uploads"] and clock.slept == []


def test_starting_an_upload_is_repeated_only_when_nothing_can_have_been_left() -> None:
    clock = Clock()
    # Refused before it arrived, or turned away by a 503: nothing was created; retried.
    plane = Scripted(down(connected=False), down(503), "upload-1")
    assert wrap(plane, clock).create_upload(HERE, content_type="x", metadata={},
                                            checksum="none", size=1) == "upload-1"
    # A 500 or a lost answer may have created it: not repeated (it would leave a second).
    for error in (down(500), down(0)):
        plane = Scripted(error, "upload-2")
        with pytest.raises(EndpointError):
            wrap(plane, clock).create_upload(HERE, content_type="x", metadata={},
                                             checksum="none", size=1)
        assert plane.calls == ["create"]


def test_a_server_never_reached_is_given_up_on_quickly() -> None:
    """A wrong address is said within a few attempts; once the server has answered, an
    outage gets the whole budget."""
    clock = Clock()
    plane = Scripted(*[down(connected=False) for _ in range(30)])
    with pytest.raises(EndpointError):
        wrap(plane, clock).head(HERE)
    assert len(plane.calls) == RetryBudget(max_attempts=20, retry_for=300, base=0.25,
                                           cap=20).first_contact_attempts

    plane = Scripted(None, *[down(connected=False) for _ in range(10)], None)
    calls = wrap(plane, clock)
    assert calls.head(HERE) is None
    assert calls.head(HERE) is None
    assert len(plane.calls) == 12


def test_a_pause_or_the_deadline_cuts_the_wait_short_but_not_an_abort() -> None:
    clock = Clock()
    flow = Flow()
    flow.pause()
    plane = Scripted(down(), ObjectInfo(size=1, etag="e"))
    with pytest.raises(Stopped, match="pause"):
        wrap(plane, clock, flow=flow).complete(HERE, "u", [])

    flow = Flow()
    flow.cancel()
    plane = Scripted(down(), None)
    wrap(plane, clock, flow=flow).abort(HERE, "u")
    assert plane.calls == ["abort", "abort"]


def test_a_listing_that_fails_midway_goes_on_where_it_stopped() -> None:
    clock = Clock()
    first = [ListedObject(Destination("bucket", f"k{i}"), 1, "e", 0.0) for i in range(3)]
    plane = Scripted([*first[:2], down()], first)
    listed = list(wrap(plane, clock).list_objects(Destination("bucket", "")))
    assert listed == first



class Signing(Scripted):
    def sign_object(self, destination: Destination, part: PartToSign, *, content_type: str,
                    metadata: Mapping[str, str], expires_in: int) -> SignedPart:
        return SignedPart(part.number, "http://scripted/object")


def test_what_a_control_plane_can_do_is_asked_once_not_per_file() -> None:
    from streamify._calls import retrying

    command = retrying(Signing(), UploadConfig())
    assert command.signs_objects and command.lists_objects
    assert not retrying(Scripted(), UploadConfig()).signs_objects
    for _ in range(3):  # each file of a batch wraps the command's control plane anew
        per_file = retrying(command, UploadConfig(), flow=Flow())
        assert per_file.inner is command.inner
        # Taken over, not asked again (a runtime protocol's isinstance inspects each of
        # its members, for every file).
        assert per_file.abilities is command.abilities
        signed = per_file.sign_object(HERE, PartToSign(1, 3, None, None),
                                      content_type="video/mp4", metadata={}, expires_in=60)
        assert signed.url == "http://scripted/object"
