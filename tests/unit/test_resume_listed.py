"""``decide_listed``: the resume decision for a file only the browser reads (the notebook's
``BrowserUploader``): no fingerprint, no state, only the file's size and the parts S3
lists; the MD5s of the ranges asked for come from the reader. Same model as
``test_resume``: the file is seed 0, another file seed 1."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from streamify import (
    Create,
    ListedFacts,
    NeedHashes,
    RangeHashes,
    Refuse,
    Resume,
    SourceChangedError,
    UploadConfig,
    decide_listed,
    plan_parts,
)

from tests.unit.test_resume import DEST, GiB, MiB, _md5, _part, part_sizes

sizes = st.integers(1, 60 * GiB)


def _facts(size: int, **kwargs: object) -> ListedFacts:
    kwargs.setdefault("config", UploadConfig())
    return ListedFacts(source_name="v.mp4", destination=DEST, size=size,
                       **kwargs)  # type: ignore[arg-type]


def _run(facts: ListedFacts) -> tuple[Create | Resume | Refuse, set[tuple[int, int]]]:
    """Answer every ``NeedHashes`` as the browser does (MD5s of the file, seed 0); return the
    decision and the ranges that were hashed."""
    hashed: set[tuple[int, int]] = set()
    for _ in range(50):
        decision = decide_listed(facts)
        if not isinstance(decision, NeedHashes):
            return decision, hashed
        assert decision.checksum == "none" and decision.ranges
        hashed |= set(decision.ranges)
        answers = {r: RangeHashes(_md5(0, r), None) for r in decision.ranges}
        facts = replace(facts, hashes={**facts.hashes, **answers})
    raise AssertionError("decide_listed kept asking for hashes")


@given(size=sizes, part_size=part_sizes, preferred=part_sizes, data=st.data())
def test_the_remembered_upload_keeps_only_parts_whose_md5_is_the_files(
        size: int, part_size: int, preferred: int, data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = st.integers(1, plan.count)
    mine = data.draw(st.sets(numbers, max_size=5))
    other = data.draw(st.sets(numbers, max_size=3)) - mine
    no_md5 = data.draw(st.sets(numbers, max_size=3)) - mine - other
    listed = ([_part(plan, n) for n in mine] + [_part(plan, n, seed=1) for n in other]
              + [_part(plan, n, sse=True) for n in no_md5])
    decision, hashed = _run(_facts(size, config=UploadConfig(part_size=preferred),
                                   upload_id="up-1", listed=listed,
                                   part_size=plan.part_size))
    assert isinstance(decision, Resume), decision
    assert decision.plan == plan and decision.upload_id == "up-1"
    assert set(decision.keep) == mine and decision.mismatched == ()
    # A part whose ETag is not the file's MD5 (another file's, or no MD5 at all, as under
    # SSE-KMS) is checked (hashed) and sent again, never kept.
    assert set(decision.unverifiable) == other | no_md5
    assert hashed == {(plan.part(n).offset, plan.part(n).size) for n in mine | other | no_md5}


@given(size=sizes, part_size=part_sizes, preferred=part_sizes, data=st.data())
def test_an_upload_found_by_listing_resumes_the_same_file_with_its_own_plan(
        size: int, part_size: int, preferred: int, data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), min_size=1, max_size=6))
    decision, _ = _run(_facts(size, config=UploadConfig(part_size=preferred),
                              upload_id="up-1", listed=[_part(plan, n) for n in numbers]))
    assert isinstance(decision, Resume), decision
    assert decision.found_by == "listing" and set(decision.keep) == numbers
    for number in numbers:
        assert decision.plan.part(number) == plan.part(number)


@given(size=st.integers(1, 60 * GiB), part_size=part_sizes, data=st.data())
def test_an_upload_found_by_listing_that_holds_another_file_is_refused(
        size: int, part_size: int, data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), min_size=1, max_size=6))
    decision, _ = _run(_facts(size, upload_id="up-1",
                              listed=[_part(plan, n, seed=1) for n in numbers]))
    assert isinstance(decision, Refuse)
    assert isinstance(decision.error, SourceChangedError)


@given(size=st.integers(0, 60 * GiB), part_size=part_sizes, gone=st.booleans())
def test_nothing_open_or_the_remembered_upload_gone_starts_a_new_one(
        size: int, part_size: int, gone: bool) -> None:
    decision = decide_listed(_facts(size, config=UploadConfig(part_size=part_size),
                                    upload_id="up-1" if gone else None,
                                    part_size=8 * MiB if gone else None))
    assert decision == Create(plan_parts(size, part_size), "none",
                              replaces="up-1" if gone else None)
