"""Speed and time left from progress samples (pure; the clock is passed in)."""

from __future__ import annotations

import itertools
import sys
import threading
import time

import pytest

pytest.importorskip("anywidget", reason="notebook tier skipped: the notebook extra is not "
                    "installed (bash scripts/setup.sh server,dev,notebook)")

from streamify_notebook._progress import RateMeter

MiB = 1024 * 1024


def test_speed_is_unknown_until_time_has_passed() -> None:
    meter = RateMeter()
    first = meter.add(10.0, 0, 100 * MiB)
    assert (first.bytes_per_second, first.seconds_left) == (0.0, None)


def test_speed_and_time_left_from_the_samples() -> None:
    meter = RateMeter()
    meter.add(0.0, 0, 100 * MiB)
    speed = meter.add(2.0, 20 * MiB, 100 * MiB)
    assert speed.bytes_per_second == 10 * MiB
    assert speed.seconds_left == 8.0


def test_bytes_already_in_s3_do_not_count_as_speed() -> None:
    meter = RateMeter()
    meter.add(0.0, 60 * MiB, 100 * MiB)  # a resume starts at what S3 holds
    speed = meter.add(1.0, 65 * MiB, 100 * MiB)
    assert speed.bytes_per_second == 5 * MiB and speed.seconds_left == 7.0


def test_the_window_forgets_old_samples() -> None:
    meter = RateMeter(window=5.0)
    meter.add(0.0, 0, 1000 * MiB)
    meter.add(1.0, 100 * MiB, 1000 * MiB)  # fast at first
    for second in range(2, 20):
        speed = meter.add(float(second), 100 * MiB + (second - 1) * MiB, 1000 * MiB)
    assert speed.bytes_per_second == pytest.approx(MiB)


def test_reset_after_a_pause() -> None:
    meter = RateMeter()
    meter.add(0.0, 0, 10 * MiB)
    meter.add(1.0, 5 * MiB, 10 * MiB)
    meter.reset()
    assert meter.add(100.0, 5 * MiB, 10 * MiB).bytes_per_second == 0.0


def test_part_threads_and_a_reset_can_share_the_meter() -> None:
    # Every part thread reports progress, and the Pause or Resume button resets the meter
    # from the kernel's own thread; none of them may see the samples half changed.
    meter = RateMeter(window=0.001)
    total = 1000 * MiB
    done = itertools.count(step=1024)
    failures: list[BaseException] = []
    stop = threading.Event()

    def report() -> None:
        try:
            while not stop.is_set():
                speed = meter.add(time.monotonic(), next(done), total)
                assert speed.bytes_per_second >= 0.0
        except BaseException as exc:  # any failure in a part thread counts
            failures.append(exc)
            stop.set()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the interpreter between threads as often as it can
    try:
        threads = [threading.Thread(target=report) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 2.0
        while not stop.is_set() and time.monotonic() < deadline:
            meter.reset()
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []
