"""CPU per GiB of each part checksum Streamify can send, side by side in one run.

Every algorithm hashes the same 8 MiB buffers of incompressible bytes (a part of the
default size), in interleaved rounds (MD5, then CRC32C, then CRC64NVME... then again), so a
slow moment of the shared machine falls on each alike. CPU is this thread's own
(``time.thread_time``); the median round is reported with ratios to MD5, the check every
part carries by default (Content-MD5). CRC32C and CRC64NVME come from ``awscrt`` (the
``crc`` extra), CRC32 from zlib, MD5 and SHA-256 from OpenSSL through ``hashlib``.

    python benchmarks/checksums.py [--gib 1] [--rounds 5] [--write]

``--write`` saves the table as ``benchmarks/results/checksums.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import textwrap
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from awscrt import checksums

__all__ = ["main"]

MiB = 1024 * 1024
GiB = 1024 * MiB
BUFFER = 8 * MiB
RESULTS = Path(__file__).resolve().parent / "results"

ALGORITHMS: dict[str, tuple[str, Callable[[bytes], object]]] = {
    "md5": ("MD5 (OpenSSL, `hashlib`): Content-MD5, the default",
            lambda b: hashlib.md5(b, usedforsecurity=False).digest()),
    "crc32c": ("CRC32C (`awscrt.checksums.crc32c`)", checksums.crc32c),
    "crc64nvme": ("CRC64NVME (`awscrt.checksums.crc64nvme`): `--checksum crc64nvme`",
                  checksums.crc64nvme),
    "crc32": ("CRC32 (`zlib.crc32`): `--checksum crc32`", zlib.crc32),
    "sha256": ("SHA-256 (OpenSSL, `hashlib`): `--checksum sha256`",
               lambda b: hashlib.sha256(b).digest()),
}


def cpu_per_gib(hash_one: Callable[[bytes], object], buffers: list[bytes], total: int) -> float:
    """CPU seconds this thread spends hashing ``total`` bytes of ``buffers``, per GiB."""
    started = time.thread_time()
    done = 0
    while done < total:
        for buffer in buffers:
            hash_one(buffer)
            done += len(buffer)
            if done >= total:
                break
    return (time.thread_time() - started) * GiB / done


def run(gib: float, rounds: int) -> dict[str, float]:
    """Median CPU-s per GiB of each algorithm over ``rounds`` interleaved rounds."""
    buffers = [os.urandom(BUFFER) for _ in range(4)]
    total = int(gib * GiB)
    seen: dict[str, list[float]] = {name: [] for name in ALGORITHMS}
    for _ in range(rounds):
        for name, (_, hash_one) in ALGORITHMS.items():
            seen[name].append(cpu_per_gib(hash_one, buffers, total))
    return {name: statistics.median(values) for name, values in seen.items()}


def table(medians: dict[str, float], gib: float, rounds: int) -> str:
    md5 = medians["md5"]
    about = (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work, "
             f"Python {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Each algorithm hashes "
             f"{gib:g} GiB of the same 8 MiB buffers (the default part size) per round, "
             f"{rounds} rounds interleaved; CPU is the hashing thread's own; medians.")
    lines = [
        "# CPU per GiB of each part checksum (one interleaved run)",
        "",
        f"    python benchmarks/checksums.py --gib {gib:g} --rounds {rounds} --write",
        "",
        *textwrap.wrap(about, 92),
        "",
        "| checksum | CPU-s per GiB | vs MD5 | GiB/s on one core |",
        "|---|---:|---:|---:|",
    ]
    for name, (label, _) in ALGORITHMS.items():
        value = medians[name]
        lines.append(f"| {label} | {value:.3f} | {value / md5:.2f}x | {1 / value:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB hashed per algorithm "
                        "and round (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--write", action="store_true",
                        help="save the table as benchmarks/results/checksums.md")
    args = parser.parse_args()
    text = table(run(args.gib, args.rounds), args.gib, args.rounds)
    print(text)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "checksums.md").write_text(text)


if __name__ == "__main__":
    main()
