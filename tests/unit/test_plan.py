import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamify import ConfigError, plan_parts
from streamify._plan import (
    MAX_OBJECT_SIZE,
    MAX_PARTS,
    PartPlan,
    candidate_plans,
    stream_part_size,
)

MiB = 1024 * 1024
GiB = 1024 * MiB


def test_empty_file_is_one_empty_part() -> None:
    plan = plan_parts(0, 8 * MiB)
    assert plan.count == 1
    assert next(iter(plan)).size == 0


def test_exactly_one_minimum_part() -> None:
    plan = plan_parts(5 * MiB, 5 * MiB)
    assert [(p.number, p.offset, p.size) for p in plan] == [(1, 0, 5 * MiB)]


def test_one_byte_over_a_part_makes_a_tiny_last_part() -> None:
    plan = plan_parts(5 * MiB + 1, 5 * MiB)
    assert [p.size for p in plan] == [5 * MiB, 1]


def test_exactly_ten_thousand_parts_keeps_the_part_size() -> None:
    plan = plan_parts(MAX_PARTS * 5 * MiB, 5 * MiB)
    assert plan.part_size == 5 * MiB
    assert plan.count == MAX_PARTS


def test_one_byte_more_than_ten_thousand_parts_grows_the_part_size() -> None:
    plan = plan_parts(MAX_PARTS * 5 * MiB + 1, 5 * MiB)
    assert plan.count <= MAX_PARTS
    assert plan.part_size == 6 * MiB


def test_five_tib_fits() -> None:
    plan = plan_parts(MAX_OBJECT_SIZE, 8 * MiB)
    assert plan.count <= MAX_PARTS
    assert plan.part_size <= 5 * GiB
    last = plan.part(plan.count)
    assert last.offset + last.size == MAX_OBJECT_SIZE


def test_beyond_five_tib_is_refused() -> None:
    with pytest.raises(ConfigError, match="5 TiB"):
        plan_parts(MAX_OBJECT_SIZE + 1, 8 * MiB)


@pytest.mark.parametrize("part_size", [5 * MiB - 1, 5 * GiB + 1])
def test_part_size_outside_s3_limits_is_refused(part_size: int) -> None:
    with pytest.raises(ConfigError):
        plan_parts(100, part_size)


def test_part_numbers_outside_the_plan_raise() -> None:
    plan = plan_parts(12 * MiB, 5 * MiB)
    with pytest.raises(IndexError):
        plan.part(4)
    with pytest.raises(IndexError):
        plan.part(0)


@given(size=st.integers(0, MAX_OBJECT_SIZE),
       part_size=st.integers(5 * MiB, 5 * GiB))
def test_plans_cover_the_file_exactly_and_respect_limits(size: int, part_size: int) -> None:
    plan = plan_parts(size, part_size)
    assert plan == plan_parts(size, part_size)  # deterministic
    assert 1 <= plan.count <= MAX_PARTS
    assert 5 * MiB <= plan.part_size <= 5 * GiB
    first, last = plan.part(1), plan.part(plan.count)
    assert first.offset == 0
    assert last.offset + last.size == size
    assert 0 <= last.size <= plan.part_size
    if plan.count > 1:
        assert last.size > 0


def test_plan_is_read_back_from_listed_part_sizes() -> None:
    plan = plan_parts(100 * MiB, 16 * MiB)
    listed = [(3, 16 * MiB), (1, 16 * MiB)]
    assert candidate_plans(100 * MiB, listed, 8 * MiB) == [plan]


def test_a_lone_last_part_never_sets_the_part_size() -> None:
    # 22 MiB in 8 MiB parts: the 3rd part is the last, 6 MiB. Read as a full part it would
    # mean 6 MiB parts; both plans are candidates, the configured one first.
    plans = candidate_plans(22 * MiB, [(3, 6 * MiB)], 8 * MiB)
    assert plans == [PartPlan(22 * MiB, 8 * MiB), PartPlan(22 * MiB, 6 * MiB)]
    # Configured otherwise, the part size the last part implies is still offered.
    assert PartPlan(22 * MiB, 8 * MiB) in candidate_plans(22 * MiB, [(3, 6 * MiB)], 16 * MiB)


def test_no_listed_parts_gives_the_configured_plan() -> None:
    assert candidate_plans(100 * MiB, [], 16 * MiB) == [plan_parts(100 * MiB, 16 * MiB)]


def test_a_grown_plan_is_read_back_unchanged() -> None:
    size = MAX_PARTS * 5 * MiB + 12345
    plan = plan_parts(size, 5 * MiB)
    assert candidate_plans(size, [(2, plan.part_size)], 5 * MiB) == [plan]


@given(size=st.integers(1, 200 * GiB), part_size=st.integers(5 * MiB, 64 * MiB),
       preferred=st.integers(5 * MiB, 64 * MiB), data=st.data())
def test_the_plan_that_cut_the_parts_is_always_a_candidate(size: int, part_size: int,
                                                           preferred: int,
                                                           data: st.DataObject) -> None:
    plan = plan_parts(size, part_size)
    numbers = data.draw(st.sets(st.integers(1, plan.count), max_size=5))
    listed = [(n, plan.part(n).size) for n in numbers]
    candidates = candidate_plans(size, listed, preferred)
    # Some candidate puts every listed part where the original plan had it (the same bytes).
    assert any(all(c.part(n) == plan.part(n) for n in numbers) for c in candidates)
    for candidate in candidates:
        assert all(candidate.part(n).size == s for n, s in listed)


def _stream_sizes(part_size: int) -> list[int]:
    return [stream_part_size(n, part_size) for n in range(1, MAX_PARTS + 1)]


@pytest.mark.parametrize("part_size", [5 * MiB, 8 * MiB, 5 * MiB + 1, 64 * MiB, 5 * GiB])
def test_a_stream_reaches_five_tib_within_ten_thousand_parts(part_size: int) -> None:
    sizes = _stream_sizes(part_size)
    assert all(5 * MiB <= s <= 5 * GiB for s in sizes)  # every part may be the last but one
    assert sizes == sorted(sizes) and sizes[0] == part_size
    assert sum(sizes) >= MAX_OBJECT_SIZE


@settings(deadline=None)  # 10,000 sizes an example: a loaded machine may take 200 ms
@given(part_size=st.integers(5 * MiB, 5 * GiB))
def test_stream_part_sizes_grow_from_the_configured_size(part_size: int) -> None:
    sizes = _stream_sizes(part_size)
    assert sizes[0] == part_size and sizes == sorted(sizes)
    assert all(5 * MiB <= s <= 5 * GiB for s in sizes)
    assert sum(sizes) >= MAX_OBJECT_SIZE


def test_small_streams_keep_the_configured_part_size() -> None:
    # 3 GiB in 8 MiB parts is 384 parts: memory stays concurrency x 8 MiB.
    assert {stream_part_size(n, 8 * MiB) for n in range(1, 385)} == {8 * MiB}
    assert stream_part_size(901, 8 * MiB) == 16 * MiB
    with pytest.raises(IndexError):
        stream_part_size(MAX_PARTS + 1, 8 * MiB)
