"""A PNG of grouped bars: one panel per measure, one group per case, one bar per contender."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

__all__ = ["grouped_bars"]


def grouped_bars(path: Path, title: str, cases: Sequence[str], contenders: Sequence[str],
                 panels: Sequence[tuple[str, Mapping[tuple[str, str], float]]],
                 log_scale: Collection[str] = ()) -> None:
    """Write ``path``: for each panel (label, {(case, contender): value}) a bar chart.

    A missing value (a contender that failed or was not run) leaves a gap. The panels
    whose label is in ``log_scale`` have a logarithmic axis (values spanning decades).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(contenders))
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)),
                                squeeze=False)
    colours = plt.get_cmap("tab10")
    for (label, values), ax in zip(panels, axes[:, 0], strict=True):
        for index, contender in enumerate(contenders):
            xs, heights = [], []
            for position, case in enumerate(cases):
                if (case, contender) in values:
                    xs.append(position + (index - (len(contenders) - 1) / 2) * width)
                    heights.append(values[case, contender])
            bars = ax.bar(xs, heights, width, label=contender, color=colours(index % 10))
            ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
        ax.set_xticks(range(len(cases)), list(cases))
        ax.set_ylabel(label)
        if label in log_scale:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=8, ncols=min(4, len(contenders)), loc="lower center",
                      bbox_to_anchor=(0.5, 1.12))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
