"""Each registered metric as the leaderboard and the comparisons read it (``MetricColumn``).

One function, called by the leaderboard and comparisons assets, ``bench
leaderboard``/``compare``/``gate`` and the synthetic demo warehouse, so that a
metric's table, direction and aggregate are the same wherever results are read.
"""

from __future__ import annotations

from typing import Sequence

from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import METRICS
from bench_assets.storage.leaderboard import MetricColumn


def metric_columns(metrics: Sequence[type[Metric]] | None = None) -> list[MetricColumn]:
    """The leaderboard columns of ``metrics`` (None: every metric in the registry)."""
    chosen = list(METRICS.values()) if metrics is None else metrics
    return [MetricColumn(m.name, m.table, m.higher_is_better, m.summary_columns, m.combine) for m in chosen]
