"""The report's plots, drawn by matplotlib as SVG files (offline, no chart code of our own).

- ``means``: per metric, each model's mean with its 95% interval (dot + error
  bar), so overlapping intervals are visible at a glance.
- ``cost``: per metric, quality against GPU-seconds per image, with the
  Pareto front (no other model is both cheaper and better) marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Deterministic SVGs: no timestamp, no random ids that change between builds.
SVG_RC = {"svg.hashsalt": "bench-report", "svg.fonttype": "none", "font.size": 9}
SVG_METADATA = {"Date": None, "Creator": None}


@dataclass(frozen=True)
class ModelPoint:
    model: str
    mean: float
    ci_low: float | None = None
    ci_high: float | None = None
    cost: float | None = None  # GPU-seconds per image


def pareto_front(points: Sequence[ModelPoint], higher_is_better: bool = True) -> list[ModelPoint]:
    """The points no other point dominates (cost no higher and quality no worse, one strictly).

    Sorted by cost, so the front can be drawn as a line.
    """
    sign = 1.0 if higher_is_better else -1.0
    usable = [p for p in points if p.cost is not None]

    def dominated(p: ModelPoint) -> bool:
        return any(
            q.cost <= p.cost and sign * q.mean >= sign * p.mean and (q.cost < p.cost or sign * q.mean > sign * p.mean)
            for q in usable
        )

    return sorted((p for p in usable if not dominated(p)), key=lambda p: (p.cost, -sign * p.mean))


# Margins in inches, set by hand: matplotlib's tight layout measures every label's extent, which was most of
# a report rebuild at a hundred models (22 plots, 5 of 12 s); a label's width is estimated from its length.
CHAR_INCHES = 0.075  # an average character of the 9 pt font
WIDTH = 5.0


def _figure(height: float, left: float, top: float = 0.15, bottom: float = 0.5, right: float = 0.2):
    """A figure of ``WIDTH`` × ``height`` inches whose axes leave the margins given (inches)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH, height))
    left = min(left, WIDTH / 2)
    fig.subplots_adjust(left=left / WIDTH, right=1 - right / WIDTH, bottom=bottom / height, top=1 - top / height)
    return fig, ax


def _save(fig, target: Path) -> None:
    import matplotlib.pyplot as plt

    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="svg", metadata=SVG_METADATA)
    plt.close(fig)


def means_plot(metric: str, points: Sequence[ModelPoint], target: Path) -> Path:
    """Dot + 95% interval per model, best at the top."""
    import matplotlib

    with matplotlib.rc_context(SVG_RC):
        longest = max((len(p.model) for p in points), default=1)
        fig, ax = _figure(0.7 + 0.32 * max(len(points), 1), left=0.35 + CHAR_INCHES * longest)
        ordered = list(reversed(points))
        ys = range(len(ordered))
        means = [p.mean for p in ordered]
        low = [p.mean - p.ci_low if p.ci_low is not None else 0.0 for p in ordered]
        high = [p.ci_high - p.mean if p.ci_high is not None else 0.0 for p in ordered]
        ax.errorbar(means, list(ys), xerr=[low, high], fmt="o", color="#1f5fa8", ecolor="#7aa6d6",
                    elinewidth=2, capsize=3)
        ax.set_yticks(list(ys), [p.model for p in ordered])
        ax.set_xlabel(f"{metric}: mean with 95% interval")
        ax.grid(axis="x", alpha=0.3)
        _save(fig, target)
    return target


def cost_plot(metric: str, points: Sequence[ModelPoint], higher_is_better: bool, target: Path) -> Path:
    """Quality against GPU-seconds per image; the Pareto front as a line with filled markers."""
    import matplotlib

    with matplotlib.rc_context(SVG_RC):
        fig, ax = _figure(3.5, left=0.8, top=0.45)  # room above the axes for the legend
        usable = [p for p in points if p.cost is not None]
        front = pareto_front(usable, higher_is_better)
        ax.scatter([p.cost for p in usable], [p.mean for p in usable], color="#999999", label="model", zorder=2)
        if front:
            ax.plot([p.cost for p in front], [p.mean for p in front], "-o", color="#c2410c",
                    label="Pareto front", zorder=3)
        for p in usable:
            ax.annotate(p.model, (p.cost, p.mean), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("GPU-seconds per image (generation + scoring)")
        ax.set_ylabel(f"{metric} ({'higher' if higher_is_better else 'lower'} is better)")
        ax.grid(alpha=0.3)
        if usable:  # above the axes: never over a point, and no search for the emptiest corner
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize=8, frameon=False)
        _save(fig, target)
    return target
