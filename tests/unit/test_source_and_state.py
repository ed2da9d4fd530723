import dataclasses
import json
import os
import threading
from contextlib import closing
from pathlib import Path

import fsspec
import pytest
from streamify import (
    Destination,
    Fingerprint,
    LocalFileSource,
    ResumeState,
    SourceError,
    StateStore,
    StateStoreError,
    open_source,
)

MiB = 1024 * 1024


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _fingerprint(path: Path) -> Fingerprint:
    with closing(open_source(path)) as source:
        return source.fingerprint()


def test_local_reads_are_positional(tmp_path: Path) -> None:
    source = LocalFileSource(_write(tmp_path / "f", bytes(range(256)) * 10))
    assert source.size == 2560
    assert source.read(255, 3) == bytes([255, 0, 1])
    source.close()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.mp4: no such file"):
        open_source(tmp_path / "nope.mp4")


def test_directory_is_not_a_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a regular file"):
        open_source(tmp_path)


def test_a_shrunk_file_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", b"x" * 100)
    with closing(LocalFileSource(path)) as source:
        os.truncate(path, 10)
        with pytest.raises(SourceError, match="shrank"):
            source.read(50, 50)


def test_fingerprint_changes_when_content_changes_in_the_edges(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", os.urandom(3 * MiB))
    before = _fingerprint(path)
    with open(path, "r+b") as fh:
        fh.seek(3 * MiB - 10)
        fh.write(b"0123456789")
    os.utime(path, ns=(1, int(before.version)))  # same mtime: the edge hash must tell
    after = _fingerprint(path)
    assert after.size == before.size and after.version == before.version
    assert after != before


def test_fingerprint_changes_with_mtime_for_a_change_in_the_middle(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", os.urandom(3 * MiB))
    before = _fingerprint(path)
    with open(path, "r+b") as fh:
        fh.seek(MiB + 5)
        fh.write(b"!")
    os.utime(path, ns=(1, int(before.version) + 1_000_000))
    assert _fingerprint(path) != before


def test_fingerprint_is_stable(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", os.urandom(MiB + 1))
    assert _fingerprint(path) == _fingerprint(path)


def test_fsspec_source_reads_ranges() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/videos/a.bin", b"abcdefghij" * 1000)
    source = open_source("memory://videos/a.bin")
    assert source.size == 10000
    assert source.read(3, 4) == b"defg"
    assert source.fingerprint().size == 10000


def test_fsspec_missing_url() -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source("memory://nothing/here.bin")


def _state(key: str = "videos/a.mp4") -> ResumeState:
    return ResumeState(endpoint="http://127.0.0.1:1", destination=Destination("b", key),
                       upload_id="up-1", part_size=8 * MiB, source="/data/a.mp4",
                       fingerprint=Fingerprint(size=10, version="1", edges_sha256="ab"))


def test_state_roundtrip_and_removal(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = _state()
    store.save(state)
    assert store.load(state.endpoint, state.destination) == state
    assert store.all() == [state]
    store.remove(state.endpoint, state.destination)
    assert store.load(state.endpoint, state.destination) is None
    store.remove(state.endpoint, state.destination)  # twice is fine


def test_state_records_who_started_it_and_reads_documents_from_before(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = _state()
    owned = dataclasses.replace(state, principal="aws:AKIAEXAMPLE")
    store.save(owned)
    assert store.load(state.endpoint, state.destination) == owned
    assert json.loads(Path(store.path_of(owned)).read_text())["principal"] == "aws:AKIAEXAMPLE"

    older = owned.to_json()
    del older["principal"]  # written before principals were recorded
    Path(store.path_of(owned)).write_text(json.dumps(older))
    assert store.load(state.endpoint, state.destination) == state
    assert state.principal == ""


def test_state_write_is_atomic_under_concurrent_readers(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = _state()
    store.save(state)
    path = Path(store.location) / f"{state.store_key}.json"
    stop = threading.Event()
    torn: list[str] = []

    def read() -> None:
        while not stop.is_set():
            text = path.read_text()
            try:
                json.loads(text)
            except ValueError:
                torn.append(text)

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(300):
        store.save(ResumeState(**{**state.__dict__, "upload_id": f"up-{n}" * 50}))
    stop.set()
    reader.join()
    assert torn == []
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_damaged_state_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = _state()
    store.save(state)
    (Path(store.location) / f"{state.store_key}.json").write_text("{not json")
    assert store.load(state.endpoint, state.destination) is None


def test_unwritable_state_location_is_reported_early(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = StateStore(blocker / "state")  # a path under a regular file: even root can't
    with pytest.raises(StateStoreError, match="STREAMIFY_STATE_DIR"):
        store.ensure_writable()


def test_state_in_an_fsspec_location() -> None:
    store = StateStore("memory://shared-state")
    store.ensure_writable()
    state = _state()
    store.save(state)
    assert store.load(state.endpoint, state.destination) == state
    assert store.all() == [state]


def test_state_env_var_sets_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMIFY_STATE_DIR", str(tmp_path / "env"))
    assert StateStore().location == str(tmp_path / "env")
