"""The README's benchmark summary, written from the results of ``bash benchmarks/run.sh``.

Reads what the benchmarks left in the results folder (every run as JSON lines) and
replaces the block between the two summary markers of README.md with one table: each
measurement's medians, its ratio against the alternatives, and its chart. A benchmark
that did not run (its runs file is missing) is left out of the table, not guessed.

    python benchmarks/summary.py [--results benchmarks/results] [--readme README.md]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from _runs import Run, load_runs, median_of

__all__ = ["main", "summary"]

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- benchmark summary: begin (written by benchmarks/summary.py) -->"
END = "<!-- benchmark summary: end -->"


def _x(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if value and base else "-"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _medians(runs: Sequence[Run], case: str, field: str) -> dict[str, float]:
    """Each contender's median ``field`` for ``case``, over its runs that did not fail."""
    good = [run for run in runs if run.case == case and not run.error]
    return {name: median_of([run for run in good if run.contender == name], field)
            for name in dict.fromkeys(run.contender for run in good)}


def _runs(results: Path, name: str) -> list[Run]:
    """The runs a benchmark left in ``results`` (none when it did not run)."""
    path = results / f"{name}-runs.jsonl"
    return load_runs(path) if path.exists() else []


def _started(results: Path, name: str) -> str:
    """'2026-12-05 02:03 UTC, commit abc1234' from a benchmark's header, or ''."""
    header = results / f"{name}-runs.header.md"
    found = re.search(r"Started ([^,]+), commit (\w+)", header.read_text()) \
        if header.exists() else None
    return f"{found.group(1)}, core {found.group(2)}" if found else ""


def _link(results: Path, name: str) -> str:
    path = results / name
    return f"[{name}]({path.resolve().relative_to(ROOT)})" if path.exists() else ""


def throughput_rows(results: Path) -> list[str]:
    runs = _runs(results, "throughput")
    chart, rows = _link(results, "throughput.png"), []
    for case in dict.fromkeys(run.case for run in runs):
        seconds = _medians(runs, case, "seconds")
        size = next(run.bytes for run in runs if run.case == case)
        speed = {name: size / MiB / value for name, value in seconds.items()}
        if "streamify" in speed:
            against = [f"{_x(speed['streamify'], speed[base])} {label}" for base, label in (
                ("ceiling-md5", "the raw ceiling with Content-MD5"),
                ("obstore", "obstore")) if base in speed]
            if "streamify-api" in speed:
                against.append(f"through the API service {speed['streamify-api']:.0f} MiB/s "
                               f"({_x(speed['streamify-api'], speed['streamify'])} direct)")
            rows.append(f"| one file of {case}, Content-MD5 (the default) | "
                        f"{speed['streamify']:.0f} MiB/s | {'; '.join(against)} | {chart} |")
        if "streamify-crc64" in speed:
            against = [f"{_x(speed['streamify-crc64'], speed[base])} {label}" for base, label
                       in (("ceiling", "the raw ceiling"), ("obstore", "obstore"))
                       if base in speed]
            rows.append(f"| one file of {case}, `--checksum crc64nvme --no-content-md5` | "
                        f"{speed['streamify-crc64']:.0f} MiB/s | {'; '.join(against)} "
                        f"| {chart} |")
    return rows


def many_files_rows(results: Path) -> list[str]:
    runs = _runs(results, "many_files")
    chart, rows = _link(results, "many_files.png"), []
    for case in dict.fromkeys(run.case for run in runs):
        seconds, cpu = _medians(runs, case, "seconds"), _medians(runs, case, "cpu")
        mine = [name for name in ("streamify", "streamify-jobs16") if name in seconds]
        others = [name for name in seconds if not name.startswith("streamify")]
        if not mine:
            continue
        count = next(run.files for run in runs if run.case == case)
        size = next(run.bytes for run in runs if run.case == case)
        best = min(others, key=lambda name: seconds[name]) if others else ""
        label = " / ".join("defaults" if name == "streamify" else "`--jobs 16`"
                           for name in mine)
        if count >= 100:
            done = " / ".join(f"{count / seconds[name]:.0f}" for name in mine) + " files/s"
        else:
            done = " / ".join(f"{size / MiB / seconds[name]:.0f}" for name in mine) + " MiB/s"
        against = []
        if best:
            against.append(" / ".join(_x(seconds[best], seconds[name]) for name in mine)
                           + f" {best}")
            against.append("client CPU ms per file " + " / ".join(
                _ms(cpu[name] * 1000 / count) for name in mine)
                + f", {best} {_ms(cpu[best] * 1000 / count)}")
        if count < 100 and "streamify-jobs16" in seconds:
            jobs16 = [run for run in runs if run.case == case and not run.error
                      and run.contender == "streamify-jobs16"]
            held = max(run.held for run in jobs16)
            part = min(size // count, 8 * MiB)
            against.append(f"`--jobs 16` peak RSS {median_of(jobs16, 'peak_rss') / MiB:.0f} "
                           f"MiB against 64 MiB + the {held} parts it held "
                           f"({64 + held * part / MiB:.0f} MiB)")
        rows.append(f"| {case}, {label} | {done} | {'; '.join(against)} | {chart} |")
    return rows


def companion_rows(results: Path) -> list[str]:
    runs_file = results / "companion-runs.jsonl"
    if not runs_file.exists():
        return []
    from companion import load_rows

    found, _ = load_rows(runs_file)
    by_key = {(row.case, row.clients, row.contender): row for row in found}
    pairs = [(by_key[case, clients, "Streamify"], by_key[case, clients, "Companion"])
             for case, clients in dict.fromkeys((r.case, r.clients) for r in found)
             if (case, clients, "Streamify") in by_key and (case, clients, "Companion") in by_key]
    chart, rows = _link(results, "companion.png"), []
    signing = [(s, c) for s, c in pairs if s.case.startswith("sign")]
    others = [(s, c) for s, c in pairs if not s.case.startswith("sign")]
    if signing:
        ratios = [s.per_cpu / c.per_cpu for s, c in signing]
        lower = sum(s.p99_ms < c.p99_ms for s, c in signing)
        rows.append(f"| the API service signing parts (1, 10, 100 per call; "
                    f"{min(s.clients for s, _ in signing)} to "
                    f"{max(s.clients for s, _ in signing)} clients) | "
                    f"{min(ratios):.2f}x to {max(ratios):.2f}x Companion's requests per "
                    f"server CPU-second | `@uppy/companion`: lower p99 at {lower} of "
                    f"{len(signing)} levels | {chart} |")
    if others:
        ratios = [s.per_cpu / c.per_cpu for s, c in others]
        names = ", ".join(dict.fromkeys(s.case for s, _ in others))
        rows.append(f"| the API service: {names} | {min(ratios):.2f}x to {max(ratios):.2f}x "
                    f"Companion's requests per server CPU-second | `@uppy/companion` | "
                    f"{chart} |")
    return rows


def airflow_rows(results: Path) -> list[str]:
    runs = _runs(results, "airflow_mapped")
    if not runs:
        return []
    seconds = _medians(runs, runs[0].case, "seconds")
    if "streamify" not in seconds:
        return []
    files = runs[0].files
    against = [f"{name}'s DAG run took {_x(value, seconds['streamify'])} Streamify's time"
               for name, value in seconds.items() if name != "streamify"]
    return [f"| Airflow: {files} files by one mapped task each (CeleryExecutor) | "
            f"{seconds['streamify']:.0f} s a DAG run | {'; '.join(against)} | "
            f"{_link(results, 'airflow_mapped.png')} |"]


def summary(results: Path) -> str:
    """The markdown block (markers included) for the results in ``results``."""
    rows = [*throughput_rows(results), *many_files_rows(results), *companion_rows(results),
            *airflow_rows(results)]
    started = "; ".join(f"{name} {when}" for name in ("throughput", "many_files")
                        if (when := _started(results, name)))
    lines = [BEGIN, "",
             f"Written by `bash benchmarks/run.sh` from `{results.resolve().relative_to(ROOT)}`"
             + (f" (started: {started})" if started else "") + ". Medians; every run, the "
             "commands and the machine are in the results' markdown files.", ""]
    if rows:
        lines += ["| measurement | Streamify | against | chart |", "|---|---|---|---|", *rows]
    else:
        lines.append("No results yet: run `bash benchmarks/run.sh`.")
    return "\n".join([*lines, "", END])


def write_into(readme: Path, block: str) -> None:
    """Replace the block between the markers of ``readme`` with ``block``."""
    text = readme.read_text()
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise SystemExit(f"{readme}: no benchmark summary markers; put the two lines\n"
                         f"{BEGIN}\n{END}\nwhere the summary goes")
    readme.write_text(text[:start] + block + text[stop + len(END):])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--print", action="store_true", help="print it, write nothing")
    args = parser.parse_args()
    block = summary(args.results)
    if args.print:
        sys.stdout.write(block + "\n")
    else:
        write_into(args.readme, block)
        print(f"{args.readme}: benchmark summary written from {args.results}")


if __name__ == "__main__":
    main()
