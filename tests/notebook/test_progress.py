"""Speed and time left from progress samples (pure; the clock is passed in)."""

from __future__ import annotations

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
