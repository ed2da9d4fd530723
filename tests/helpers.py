"""Small helpers shared by the test modules."""

from __future__ import annotations

import random
from typing import Any


def make_file(path: Any, size: int, seed: int = 0) -> Any:
    """Write ``size`` pseudo-random bytes (fast, reproducible) to ``path``."""
    rng = random.Random(seed)
    block = rng.randbytes(1024 * 1024)
    with open(path, "wb") as fh:
        written = 0
        counter = 0
        while written < size:
            chunk = (counter.to_bytes(8, "big") + block)[: min(len(block), size - written)]
            fh.write(chunk)
            written += len(chunk)
            counter += 1
    return path
