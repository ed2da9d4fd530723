"""Resume decisions, exhaustively and without servers.

The model: the source's bytes at ``(offset, size)`` hash to values derived from a seed (the
source is seed 0, another file is seed 1); parts "in S3" were cut by some plan from some
seed. ``decide`` is called until it stops asking for hashes, exactly as the engine does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamify import (
    Destination,
    DestinationExistsError,
    Fingerprint,
    ObjectInfo,
    ResumeState,
    SourceChangedError,
    UploadConfig,
    UploadedPart,
    UploadGoneError,
)
from streamify._checksum import composite_etag
from streamify._plan import PartPlan, plan_parts
from streamify._resume import (
    AlreadyComplete,
    ByteRange,
    Create,
    NeedHashes,
    RangeHashes,
    Refuse,
    Resume,
    ResumeFacts,
    decide,
)

MiB = 1024 * 1024
GiB = 1024 * MiB
DEST = Destination("b", "v.mp4")
CHECKSUMS = ("none", "crc32", "sha1", "sha256", "crc64nvme")


def _bytes(seed: int, byte_range: ByteRange) -> bytes:
    return f"{seed}:{byte_range[0]}:{byte_range[1]}".encode()


def _md5(seed: int, byte_range: ByteRange) -> str:
    return hashlib.md5(_bytes(seed, byte_range)).hexdigest()


def _checksum(algorithm: str, seed: int, byte_range: ByteRange) -> str | None:
    if algorithm == "none":
        return None
    raw = hashlib.new(algorithm if algorithm.startswith("sha") else "md5", _bytes(seed, byte_range))
    length = {"crc32": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}[algorithm]
    return base64.b64encode(raw.digest()[:length]).decode()


def _part(plan: PartPlan, number: int, *, seed: int = 0, sse: bool = False,
          checksum: str = "none") -> UploadedPart:
    """A part S3 holds; ``sse``: its ETag is not its MD5 (SSE-KMS, SSE-C), though it
    looks like one."""
    part = plan.part(number)
    byte_range = (part.offset, part.size)
    etag = _md5(seed + 100, byte_range) if sse else _md5(seed, byte_range)
    return UploadedPart(number, etag, part.size, _checksum(checksum, seed, byte_range))


def _fingerprint(size: int, version: str = "1") -> Fingerprint:
    return Fingerprint(size=size, version=version, edges_sha256="edges")


def _state(plan: PartPlan, *, checksum: str = "none", version: str = "1") -> ResumeState:
    return ResumeState(endpoint="http://s3", destination=DEST, upload_id="up-1",
                       part_size=plan.part_size, source="v.mp4",
                       fingerprint=_fingerprint(plan.size, version), checksum=checksum)


def _facts(size: int, **kwargs: object) -> ResumeFacts:
    kwargs.setdefault("config", UploadConfig())
    return ResumeFacts(source_name="v.mp4", destination=DEST, fingerprint=_fingerprint(size),
                       **kwargs)  # type: ignore[arg-type]


def _run(facts: ResumeFacts) -> tuple[Create | Resume | AlreadyComplete | Refuse, int]:
    """Answer every ``NeedHashes`` from the source (seed 0); return the decision and the
    bytes that had to be hashed."""
    hashed = 0
    for _ in range(50):
        decision = decide(facts)
        if not isinstance(decision, NeedHashes):
            return decision, hashed
        assert decision.ranges
        hashed += decision.size
        answers = {r: RangeHashes(_md5(0, r), _checksum(decision.checksum, 0, r))
                   for r in decision.ranges}
        facts = replace(facts, hashes={**facts.hashes, **answers})
    raise AssertionError("decide kept asking for hashes")


sizes = st.integers(0, 60 * GiB)
part_sizes = st.integers(5 * MiB, 64 * MiB)


# ---------------------------------------------------------------------- no local state
@given(size=sizes, part_size=part_sizes, preferred=part_sizes, data=st.data())
def test_without_state_an_unchanged_source_resumes_with_every_listed_part(
        size: int, part_size: int, preferred: int, data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), min_size=1, max_size=6))
    listed = [_part(plan, n) for n in numbers]
    decision, _ = _run(_facts(size, config=UploadConfig(part_size=preferred),
                              upload_id="up-1", listed=listed))
    assert isinstance(decision, Resume), decision
    assert decision.found_by == "listing" and decision.save_state
    assert set(decision.keep) == numbers
    assert decision.mismatched == () and decision.unverifiable == ()
    for number in numbers:  # every kept part holds the bytes the chosen plan puts there
        assert decision.plan.part(number) == plan.part(number)


@given(size=st.integers(1, 60 * GiB), part_size=part_sizes, data=st.data())
def test_without_state_an_upload_of_other_data_is_refused(size: int, part_size: int,
                                                          data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), min_size=1, max_size=6))
    foreign = data.draw(st.sets(st.sampled_from(sorted(numbers)), min_size=1))
    listed = [_part(plan, n, seed=1 if n in foreign else 0) for n in numbers]
    decision, _ = _run(_facts(size, config=UploadConfig(part_size=part_size),
                              upload_id="up-1", listed=listed))
    assert isinstance(decision, Refuse)
    assert isinstance(decision.error, SourceChangedError)
    assert "does not match" in str(decision.error)


def test_a_lone_last_part_does_not_make_an_unchanged_file_look_changed() -> None:
    # 22 MiB in 8 MiB parts, only part 3 (6 MiB, the last) in S3, no local state.
    plan = plan_parts(22 * MiB, 8 * MiB)
    for preferred in (8 * MiB, 16 * MiB, 5 * MiB):
        decision, _ = _run(_facts(22 * MiB, config=UploadConfig(part_size=preferred),
                                  upload_id="up-1", listed=[_part(plan, 3)]))
        assert isinstance(decision, Resume), (preferred, decision)
        assert decision.plan == plan and set(decision.keep) == {3}


def test_without_state_the_checksum_is_told_by_the_listed_parts() -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    decision, _ = _run(_facts(30 * MiB, upload_id="up-1",
                              listed=[_part(plan, 1, checksum="sha256")]))
    assert isinstance(decision, Resume) and decision.checksum == "sha256"


@given(size=sizes, part_size=part_sizes, checksum=st.sampled_from(CHECKSUMS))
def test_nothing_open_creates_with_the_configured_plan(size: int, part_size: int,
                                                       checksum: str) -> None:
    config = UploadConfig(part_size=part_size, checksum=checksum)  # type: ignore[arg-type]
    decision, hashed = _run(_facts(size, config=config))
    assert decision == Create(plan_parts(size, part_size), checksum)
    assert hashed == 0


# ---------------------------------------------------------------------- with local state
@given(size=st.integers(1, 60 * GiB), part_size=part_sizes, preferred=part_sizes,
       recorded=st.sampled_from(CHECKSUMS), configured=st.sampled_from(CHECKSUMS),
       data=st.data())
def test_with_state_the_recorded_plan_and_checksum_are_used_and_bad_parts_resent(
        size: int, part_size: int, preferred: int, recorded: str, configured: str,
        data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), max_size=6))
    damaged = data.draw(st.sets(st.sampled_from(sorted(numbers)))) if numbers else set()
    listed = [_part(plan, n, seed=1 if n in damaged else 0, checksum=recorded)
              for n in numbers]
    config = UploadConfig(part_size=preferred, checksum=configured)  # type: ignore[arg-type]
    decision, hashed = _run(_facts(size, config=config, state=_state(plan, checksum=recorded),
                                   upload_id="up-1", listed=listed))
    assert isinstance(decision, Resume)
    assert decision.plan == plan and decision.upload_id == "up-1"
    assert decision.checksum == recorded
    assert set(decision.keep) == numbers - damaged
    # A damaged part is sent again: known wrong by its checksum, or unverifiable without one.
    assert set(decision.mismatched) == (damaged if recorded != "none" else set())
    assert set(decision.unverifiable) == (damaged if recorded == "none" else set())
    assert not decision.save_state and decision.found_by == "state"
    assert hashed == sum(plan.part(n).size for n in numbers)


def test_with_state_a_touched_file_must_match_every_part() -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    state = _state(plan, version="older")
    good = _run(_facts(30 * MiB, state=state, upload_id="up-1", listed=[_part(plan, 1)]))[0]
    assert isinstance(good, Resume) and good.save_state
    bad = _run(_facts(30 * MiB, state=state, upload_id="up-1",
                      listed=[_part(plan, 1), _part(plan, 2, seed=1)]))[0]
    assert isinstance(bad, Refuse) and isinstance(bad.error, SourceChangedError)


@pytest.mark.parametrize("recorded", [_fingerprint(30 * MiB + 1),
                                      Fingerprint(size=30 * MiB, version="1", edges_sha256="x")])
def test_with_state_another_file_is_refused_before_any_hashing(recorded: Fingerprint) -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    state = replace(_state(plan), fingerprint=recorded)
    decision, hashed = _run(_facts(30 * MiB, state=state, upload_id="up-1",
                                   listed=[_part(plan, 1)]))
    assert isinstance(decision, Refuse) and isinstance(decision.error, SourceChangedError)
    assert "streamify abort" in str(decision.error) and hashed == 0


# ---------------------------------------------------------------------- SSE-KMS / SSE-C ETags
@given(checksum=st.sampled_from(CHECKSUMS), with_state=st.booleans(), damaged=st.booleans())
def test_parts_whose_etag_is_not_an_md5_are_checked_by_checksum_or_sent_again(
        checksum: str, with_state: bool, damaged: bool) -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    listed = [_part(plan, n, sse=True, checksum=checksum, seed=1 if damaged and n == 2 else 0)
              for n in (1, 2, 3)]
    state = _state(plan, checksum=checksum) if with_state else None
    config = UploadConfig(part_size=8 * MiB)
    decision, _ = _run(_facts(30 * MiB, config=config, state=state, upload_id="up-1",
                              listed=listed))
    if not with_state and (checksum == "none" or damaged):
        # Found only by listing, a part that cannot be shown to be ours may be another
        # file's: refuse, and say how encrypted buckets are checked.
        assert isinstance(decision, Refuse)
        assert "SSE-KMS" in str(decision.error) and "checksum" in str(decision.error)
    elif checksum == "none":  # nothing to check by: never trusted blindly, sent again once
        assert isinstance(decision, Resume)
        assert decision.keep == {} and decision.unverifiable == (1, 2, 3)
    else:
        assert isinstance(decision, Resume) and decision.unverifiable == ()
        assert set(decision.keep) == ({1, 3} if damaged else {1, 2, 3})
        assert decision.mismatched == ((2,) if damaged else ())


# ---------------------------------------------------------------------- an object is there
IF_EXISTS = ("skip_identical", "refuse_different", "overwrite")


def _ranges(plan: PartPlan) -> list[ByteRange]:
    return [(part.offset, part.size) for part in plan]


@given(size=sizes, part_size=part_sizes, by_default=st.booleans(), same_data=st.booleans(),
       same_size=st.booleans(), policy=st.sampled_from(IF_EXISTS))
def test_nothing_open_and_an_object_there(size: int, part_size: int, by_default: bool,
                                          same_data: bool, same_size: bool,
                                          policy: str) -> None:
    config = UploadConfig(part_size=part_size, if_exists=policy)  # type: ignore[arg-type]
    made_with = plan_parts(size, UploadConfig().part_size if by_default else part_size)
    info = ObjectInfo(size if same_size else size + 1,
                      composite_etag(_md5(0 if same_data else 1, r) for r in _ranges(made_with)))

    decision, hashed = _run(_facts(size, config=config, existing=info))

    create = Create(plan_parts(size, part_size), "none")
    if policy == "overwrite":
        assert (decision, hashed) == (create, 0)  # not even read
        return
    if same_data and same_size:
        assert isinstance(decision, AlreadyComplete)
        assert (decision.upload_id, decision.info) == (None, info)
        assert _ranges(decision.plan) == _ranges(made_with)
    elif policy == "refuse_different":
        assert isinstance(decision, Refuse) and isinstance(decision.error, DestinationExistsError)
        assert "already holds a different object" in str(decision.error)
    else:
        assert decision == create
    # At most the configured plan and the default one are hashed; another size, none.
    assert hashed <= 2 * size if same_size else hashed == 0


@pytest.mark.parametrize("etag", ["not-an-md5-etag", "0" * 32 + "-x", "0" * 32 + "-9"])
def test_an_object_whose_etag_no_plan_can_give_is_never_read(etag: str) -> None:
    decision, hashed = _run(_facts(30 * MiB, existing=ObjectInfo(30 * MiB, etag)))
    assert (decision, hashed) == (Create(plan_parts(30 * MiB, 8 * MiB), "none"), 0)


def test_a_plain_md5_etag_is_the_source_of_one_part() -> None:
    info = ObjectInfo(3 * MiB, _md5(0, (0, 3 * MiB)))  # a single PUT: its ETag is its MD5
    decision, hashed = _run(_facts(3 * MiB, existing=info))
    assert decision == AlreadyComplete(None, plan_parts(3 * MiB, 8 * MiB), info)
    assert hashed == 3 * MiB


# ---------------------------------------------------------------------- the upload is gone
def test_gone_but_completed_by_an_earlier_run() -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    etag = composite_etag(_md5(0, (p.offset, p.size)) for p in plan)
    decision, hashed = _run(_facts(30 * MiB, state=_state(plan), upload_id="up-1",
                                   existing=ObjectInfo(30 * MiB, etag)))
    assert decision == AlreadyComplete("up-1", plan, ObjectInfo(30 * MiB, etag))
    assert hashed == 30 * MiB


@pytest.mark.parametrize("existing", [None, ObjectInfo(30 * MiB, "0" * 32 + "-4"),
                                      ObjectInfo(30 * MiB, "0" * 32)])
@pytest.mark.parametrize("policy", ["restart", "fail"])
def test_gone_and_not_completed(existing: ObjectInfo | None, policy: str) -> None:
    plan = plan_parts(30 * MiB, 8 * MiB)
    config = UploadConfig(part_size=16 * MiB, on_upload_gone=policy,  # type: ignore[arg-type]
                          checksum="crc32")
    decision, _ = _run(_facts(30 * MiB, config=config, state=_state(plan), upload_id="up-1",
                              existing=existing))
    if policy == "fail":
        assert isinstance(decision, Refuse) and isinstance(decision.error, UploadGoneError)
    else:
        assert decision == Create(plan_parts(30 * MiB, 16 * MiB), "crc32", replaces="up-1")
