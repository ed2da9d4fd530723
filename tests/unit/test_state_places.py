"""Where a command may send credentials for a resume state, decided without any request."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamify import ConfigError, Destination, Fingerprint, ResumeState, StateStore
from streamify._cli.options import ControlPlanes, Place


@pytest.mark.parametrize(("a", "b"), [
    ("https://api.example.com", "https://api.example.com/"),
    ("https://API.example.com", "https://api.example.com"),
    ("https://api.example.com:443", "https://api.example.com"),
    ("http://127.0.0.1:80/v", "http://127.0.0.1/v/"),
])
def test_the_same_place_written_differently(a: str, b: str) -> None:
    assert Place("api", a).same_as(Place("api", b))


@pytest.mark.parametrize(("a", "b"), [
    (Place("api", "https://api.example.com"), Place("api", "https://api.example.com.evil")),
    (Place("api", "https://api.example.com"), Place("api", "http://api.example.com")),
    (Place("api", "https://api.example.com"), Place("api", "https://api.example.com:8443")),
    (Place("api", "https://api.example.com"), Place("api", "https://api.example.com/other")),
    (Place("api", "https://api.example.com"), Place("s3", "https://api.example.com")),
])
def test_other_places(a: Place, b: Place) -> None:
    assert not a.same_as(b)


def _state(api_url: str) -> ResumeState:
    return ResumeState(endpoint=api_url, api_url=api_url, destination=Destination("b", "v.mp4"),
                       upload_id="u", part_size=8 << 20, source="/v.mp4",
                       fingerprint=Fingerprint(size=1, version="1", edges_sha256="e"))


def test_a_state_for_the_configured_service_gets_the_configured_plane(tmp_path: Path) -> None:
    planes = ControlPlanes(endpoint_url=None, api="https://api.example.com", token="t")
    try:
        plane = planes.for_state(_state("https://api.example.com/"), StateStore(str(tmp_path)))
        assert plane is planes.default()
    finally:
        planes.close()


@pytest.mark.parametrize("trust", [False, True])
def test_a_state_naming_another_service_needs_trust(tmp_path: Path, trust: bool) -> None:
    store = StateStore(str(tmp_path))
    state = _state("https://collector.example.net")
    planes = ControlPlanes(endpoint_url=None, api="https://api.example.com", token="t",
                           trust_state_endpoint=trust)
    try:
        if trust:
            assert planes.for_state(state, store).endpoint == "https://collector.example.net"
            return
        with pytest.raises(ConfigError) as refused:
            planes.for_state(state, store)
        assert store.path_of(state) in str(refused.value)
        assert "--api https://collector.example.net" in str(refused.value)
    finally:
        planes.close()
