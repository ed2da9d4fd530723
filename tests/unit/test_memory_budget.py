"""The memory a directory upload's files share (``jobs x concurrency`` parts), in turn.

Each file is a thread holding its share until told to let go. A thread seen waiting
(``start_and_wait_until_it_waits``) without having got in is one the budget kept out:
no sleep decides it.
"""

from __future__ import annotations

import threading

from streamify import MemoryBudget

from tests.threads import start_and_wait_until_it_waits


class File:
    """A file's thread: takes ``parts`` of ``budget``, then holds them until ``finish``."""

    def __init__(self, budget: MemoryBudget, name: str, parts: int,
                 inside: list[str]) -> None:
        self.name = name
        self.got_in = threading.Event()
        self._let_go = threading.Event()

        def run() -> None:
            with budget.hold(parts):
                inside.append(name)
                self.got_in.set()
                self._let_go.wait(30)
            inside.remove(name)

        self._thread = start_and_wait_until_it_waits(run)

    def finish(self) -> None:
        self._let_go.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


def test_files_of_one_part_share_the_memory_of_a_large_one() -> None:
    budget = MemoryBudget(4)  # one job of concurrency 4
    inside: list[str] = []
    big = File(budget, "big", 3, inside)
    small = [File(budget, f"small-{n}", 1, inside) for n in range(3)]
    assert inside == ["big", "small-0"]  # small-1 and small-2 wait for room
    small[0].finish()
    assert small[1].got_in.wait(30)
    assert inside == ["big", "small-1"]
    big.finish()
    assert small[2].got_in.wait(30)
    assert sorted(inside) == ["small-1", "small-2"]
    for file in small[1:]:
        file.finish()


def test_a_large_file_is_not_passed_over_by_the_small_ones_behind_it() -> None:
    budget = MemoryBudget(4)
    inside: list[str] = []
    first = [File(budget, f"a-{n}", 1, inside) for n in range(3)]
    big = File(budget, "big", 3, inside)  # one part's room left: waits for three
    later = File(budget, "c-0", 1, inside)  # would fit, but the large file asked first
    assert inside == ["a-0", "a-1", "a-2"]
    first[0].finish()
    first[1].finish()
    assert big.got_in.wait(30)
    assert inside == ["a-2", "big"]  # the one part left is still the large file's turn
    first[2].finish()
    assert later.got_in.wait(30)
    assert inside == ["big", "c-0"]
    big.finish()
    later.finish()


def test_a_file_of_more_parts_than_the_budget_takes_all_of_it() -> None:
    budget = MemoryBudget(2)
    inside: list[str] = []
    huge = File(budget, "huge", 5, inside)
    small = File(budget, "small", 1, inside)
    assert inside == ["huge"]
    huge.finish()
    assert small.got_in.wait(30)
    small.finish()
