"""Part planning: pure and deterministic, because resume depends on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ._config import MAX_PART_SIZE, MIN_PART_SIZE
from ._errors import ConfigError

__all__ = ["MAX_OBJECT_SIZE", "MAX_PARTS", "Part", "PartPlan", "plan_from_part_sizes", "plan_parts"]

MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024**4


@dataclass(frozen=True, slots=True)
class Part:
    """One numbered byte range of the source (numbers start at 1, as in S3)."""

    number: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How an object of ``size`` bytes is cut: every part is ``part_size`` but the last."""

    size: int
    part_size: int

    @property
    def count(self) -> int:
        # An empty object is still one (empty) part: S3 needs at least one to complete.
        return max(1, -(-self.size // self.part_size))

    def part(self, number: int) -> Part:
        if not 1 <= number <= self.count:
            raise IndexError(f"part {number} is outside 1..{self.count}")
        offset = (number - 1) * self.part_size
        return Part(number, offset, min(self.part_size, self.size - offset))

    def __iter__(self) -> Iterator[Part]:
        return (self.part(n) for n in range(1, self.count + 1))

    def __len__(self) -> int:
        return self.count


def plan_parts(size: int, part_size: int) -> PartPlan:
    """Plan ``size`` bytes with the preferred ``part_size``, growing it to fit 10,000 parts.

    The grown size is rounded up to a whole MiB so plans stay readable and stable.
    """
    if size < 0:
        raise ConfigError(f"object size {size} is negative")
    if size > MAX_OBJECT_SIZE:
        raise ConfigError(f"object size {size} bytes exceeds S3's 5 TiB limit")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ConfigError(f"part size {part_size} is outside S3's 5 MiB..5 GiB limits")
    if -(-size // part_size) > MAX_PARTS:
        mib = 1024 * 1024
        needed = -(-size // MAX_PARTS)
        part_size = min(MAX_PART_SIZE, -(-needed // mib) * mib)
    return PartPlan(size=size, part_size=part_size)


def plan_from_part_sizes(size: int, sizes: Sequence[tuple[int, int]]) -> PartPlan | None:
    """Recover the plan an earlier run used from ``(part number, size)`` pairs S3 listed.

    Every part but the last has the plan's size, so any listed part that is not the last
    one of the object tells it. Returns ``None`` when the listing does not say (no parts,
    or only the last part), and the caller then plans afresh.
    """
    for number, part_size in sorted(sizes):
        if part_size <= 0 or part_size < MIN_PART_SIZE:
            continue
        plan = PartPlan(size=size, part_size=part_size)
        is_last = number == plan.count
        if not is_last and number <= plan.count:
            return plan
    return None
