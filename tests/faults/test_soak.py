"""The short fault soak (the long one is ``python -m tests.faults``, see its docstring): 10
uploads of 0 to 24 MiB, 2 parts at a time, two through each front end (the command, the
Python API, an fsspec stream, the notebook ``Uploader``, the Airflow operator), straight to
S3 and through the API service, under a 10 % network fault rate, and 60 % of them meeting
a process, data or API service restart fault as well. Its summary is printed.

On moto the storage restart is not available (the summary says why); the long soak on a
private radosgw has it. ``FAULTS_UPLOADS`` and ``FAULTS_SEED`` change the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults._soak import FAULT_KINDS, FRONT_ENDS, NO_STORAGE_RESTART, SoakSettings, run_soak
from tests.faults._stack import Stack

MiB = 1024 * 1024


def test_short_soak_loses_nothing_through_any_front_end(stack: Stack, workdir: Path) -> None:
    settings = SoakSettings(uploads=int(os.environ.get("FAULTS_UPLOADS", "10")),
                            max_size=24 * MiB, concurrency=2, fault_rate=0.6,
                            seed=int(os.environ.get("FAULTS_SEED", "1")))
    ledger = run_soak(stack, settings, workdir)
    summary = ledger.summary()
    print("\n" + summary)
    assert ledger.trials and all(t.verified for t in ledger.trials), summary
    assert ledger.problems == [], summary
    assert ledger.orphans == 0, summary
    assert {t.front_end for t in ledger.trials} == set(FRONT_ENDS), summary
    for front_end in FRONT_ENDS:
        assert f"\n  {front_end} " in summary, summary  # its row in the matrix
    kinds = ledger.by_kind()
    assert kinds["network"] >= 1 and sum(kinds[k] for k in FAULT_KINDS[1:]) >= 2, summary
    assert NO_STORAGE_RESTART in summary, summary
