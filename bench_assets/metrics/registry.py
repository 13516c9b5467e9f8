"""Every metric the platform knows, by name: one row per metric.

Adding a metric is one module and one row here:

- the module in ``bench_assets/metrics/`` holds a :class:`~bench_assets.metrics.base.Metric`
  subclass: ``name``, ``table`` (``scores_<name>``), ``version``, ``unit``,
  ``load`` and ``score``; its ``extra_columns`` say how the report shows what
  it stores beside ``value`` (``example_row`` too, when its aggregate reads
  columns it does not declare), and its ``tiny_scorer`` builds random stand-in
  weights in code (``bench_assets/metrics/tiny/``) for ``bench demo`` and the tests;
- the row ``"<name>": <Class>`` in ``METRICS``.

From the row alone come its Dagster asset, its warehouse table and DuckDB
view, its leaderboard and comparison columns, its report pages, its demo
scorer, and its rows in the synthetic warehouse. Metric modules import torch
and their scorer libraries only inside ``load``/``score`` (and the tiny
builders when called), so importing this registry is cheap.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from bench_assets.core.config import BenchConfig, ConfigError
from bench_assets.core.errors import BenchError
from bench_assets.metrics.aesthetic import AestheticScore
from bench_assets.metrics.base import Metric
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.dino import DinoFeatures
from bench_assets.metrics.dsg import DsgScore
from bench_assets.metrics.geneval import GenEval
from bench_assets.metrics.lpips_diversity import LpipsDiversity
from bench_assets.metrics.msssim_diversity import MsssimDiversity
from bench_assets.metrics.preference import PreferenceScore
from bench_assets.metrics.text_rendering import TextRendering
from bench_assets.metrics.tifa import TifaScore
from bench_assets.metrics.vqascore import VqaScore

METRICS: dict[str, type[Metric]] = {
    "clip_score": ClipScore,
    "lpips_diversity": LpipsDiversity,
    "msssim_diversity": MsssimDiversity,
    "vqascore": VqaScore,
    "tifa": TifaScore,
    "geneval": GenEval,
    "text_rendering": TextRendering,
    "aesthetic": AestheticScore,
    "preference": PreferenceScore,
    "dino": DinoFeatures,
    "dsg": DsgScore,
}


class UnknownMetric(BenchError, ValueError):
    """A metric name the registry does not have (``bench compare --metric``, ``bench gate --metrics``)."""


def get_metric(name: str, options: dict[str, Any] | None = None) -> Metric:
    """A new, not yet loaded, metric instance with ``options`` over its defaults."""
    try:
        cls = METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}") from None
    return cls(options)


def metric_options(config: BenchConfig) -> dict[str, dict[str, Any]]:
    """``data/config.yaml``'s ``metrics:`` section, checked: known metrics, options each one takes.

    Checked once where the Dagster resource is built and where the CLI reads
    it, so a typo fails at load naming the file, not in the middle of a run.
    """
    section = {name: dict(options or {}) for name, options in config.metrics.items()}
    for name, options in section.items():
        try:
            get_metric(name, options)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{config.source}: section 'metrics': {exc.args[0]}") from None
    return section


def options_for(options_by_metric: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Any]:
    """One metric's options out of ``metric_options``' table (empty: its defaults)."""
    return dict(options_by_metric.get(name) or {})


def configured_metrics(options_by_metric: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
    """Every registered metric with this install's options: what "scored" is checked against.

    ``bench status`` and the nightly schedule both judge partitions with these
    instances (their versions and scorer ids), so the two never disagree.
    """
    return [get_metric(name, options_for(options_by_metric, name)) for name in METRICS]


def metrics_named(names: Sequence[str] | None) -> list[type[Metric]]:
    """The metric classes ``names`` picks (None or empty: all), failing on an unknown name."""
    unknown = sorted(set(names or ()) - set(METRICS))
    if unknown:
        raise UnknownMetric(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return [cls for name, cls in METRICS.items() if not names or name in names]
