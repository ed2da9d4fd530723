"""The short fault soak (the long one is ``python -m tests.faults``, see its docstring):
50 uploads of 0 to 24 MiB, straight to S3 and through the API service, under a 10 % fault
rate mixing the network, process and data faults of this suite. Its summary is printed."""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults._soak import SoakSettings, run_soak
from tests.faults._stack import Stack

MiB = 1024 * 1024


def test_short_soak_loses_nothing(stack: Stack, workdir: Path) -> None:
    settings = SoakSettings(uploads=int(os.environ.get("FAULTS_UPLOADS", "50")),
                            max_size=24 * MiB, seed=int(os.environ.get("FAULTS_SEED", "1")))
    ledger = run_soak(stack, settings, workdir)
    print("\n" + ledger.summary())
    assert ledger.trials and all(t.verified for t in ledger.trials), ledger.summary()
    assert ledger.problems == [], ledger.summary()
    assert sum(ledger.injected.values()) >= settings.uploads // 5, ledger.summary()
