"""Part planning: pure and deterministic, because resume depends on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ._config import MAX_PART_SIZE, MIN_PART_SIZE
from ._errors import ConfigError

__all__ = [
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "STREAM_DOUBLING",
    "Part",
    "PartPlan",
    "candidate_plans",
    "plan_parts",
    "stream_part_size",
]

MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024**4
STREAM_DOUBLING = 900
"""A stream's part size doubles every this many parts (see :func:`stream_part_size`)."""


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


def candidate_plans(size: int, listed: Sequence[tuple[int, int]],
                    part_size: int) -> list[PartPlan]:
    """Every plan that could have cut ``size`` bytes into the listed ``(number, size)`` parts,
    the plan for the preferred ``part_size`` first.

    A listed part is either not the last one (its size is the plan's part size) or the last
    one (the parts before it share ``size - its size`` evenly). A lone last part alone may
    fit several plans, so it never sets the part size by itself: the caller checks each
    candidate's parts against the source and keeps the first that matches.
    """
    sizes = sorted(listed)
    options = [plan_parts(size, part_size).part_size]
    for number, listed_size in sizes:
        options.append(listed_size)
        if number > 1 and (size - listed_size) % (number - 1) == 0:
            options.append((size - listed_size) // (number - 1))
    plans: list[PartPlan] = []
    for option in options:
        if not MIN_PART_SIZE <= option <= MAX_PART_SIZE:
            continue
        plan = PartPlan(size=size, part_size=option)
        if plan in plans or plan.count > MAX_PARTS:
            continue
        if all(number <= plan.count and plan.part(number).size == listed_size
               for number, listed_size in sizes):
            plans.append(plan)
    return plans


def stream_part_size(number: int, part_size: int) -> int:
    """The size of part ``number`` of a stream whose total size is unknown.

    S3 lets parts differ in size (all but the last at least 5 MiB), so a stream starts
    with ``part_size`` and doubles it every 900 parts, up to 5 GiB: small streams keep
    small parts (memory stays ``concurrency x part size``), and even from 5 MiB the 10,000
    parts hold more than 5 TiB. Deterministic, like every plan.
    """
    if not 1 <= number <= MAX_PARTS:
        raise IndexError(f"part {number} is outside 1..{MAX_PARTS}")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ConfigError(f"part size {part_size} is outside S3's 5 MiB..5 GiB limits")
    return min(MAX_PART_SIZE, part_size << ((number - 1) // STREAM_DOUBLING))
