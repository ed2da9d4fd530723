import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamify import ConfigError, plan_parts
from streamify._plan import MAX_OBJECT_SIZE, MAX_PARTS, PartPlan, plan_from_part_sizes

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
    assert plan_from_part_sizes(100 * MiB, listed) == plan


def test_only_the_last_part_listed_does_not_tell_the_plan() -> None:
    # 100 MiB in 16 MiB parts: the 7th part is 4 MiB and says nothing about the plan.
    assert plan_from_part_sizes(100 * MiB, [(7, 4 * MiB)]) is None
    assert plan_from_part_sizes(100 * MiB, []) is None


def test_a_grown_plan_is_read_back_unchanged() -> None:
    size = MAX_PARTS * 5 * MiB + 12345
    plan = plan_parts(size, 5 * MiB)
    assert plan_from_part_sizes(size, [(2, plan.part_size)]) == PartPlan(size, plan.part_size)
