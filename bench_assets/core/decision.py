"""How a team decides: composite weights, regression margins and the significance level.

From ``data/config.yaml``::

    leaderboard:
      weights: {clip_score: 2, preference: 1, aesthetic: 1}   # default: every metric 1
      margins: {clip_score: 0.5, geneval: 0.02}               # default: 0 (any significant drop)
      alpha: 0.05
      reference: my-baseline                                  # default: none

``reference`` names a model every other model is tested against in the
``comparisons`` table (besides its neighbours in rank); a name no model has
adds nothing.

``weights`` given: the composite uses exactly the metrics listed (the others
weigh 0). ``margins`` are in each metric's own units: a new version fails the
regression gate on a metric only when it is significantly worse (Holm-adjusted
p < alpha) *and* worse by more than the margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from bench_assets.core.config import BenchConfig, ConfigError

DEFAULT_WEIGHT = 1.0
DEFAULT_ALPHA = 0.05
_KEYS = {"weights", "margins", "alpha", "reference"}


@dataclass(frozen=True)
class DecisionConfig:
    weights: dict[str, float] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    alpha: float = DEFAULT_ALPHA
    reference: str | None = None

    def margin(self, metric: str) -> float:
        return self.margins.get(metric, 0.0)


def _numbers(section: Any, what: str, metrics: set[str], where: str) -> dict[str, float]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: leaderboard.{what} must map metric names to numbers")
    unknown = set(section) - metrics
    if unknown:
        raise ConfigError(f"{where}: leaderboard.{what} names unknown metric(s) {sorted(unknown)}; "
                          f"known: {sorted(metrics)}")
    out = {}
    for name, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{where}: leaderboard.{what}.{name} must be a number >= 0, got {value!r}")
        out[name] = float(value)
    return out


def decision_config(config: BenchConfig, metric_names: Iterable[str]) -> DecisionConfig:
    """The ``leaderboard:`` section, validated against the registered metrics."""
    section, where, metrics = config.leaderboard or {}, config.source, set(metric_names)
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} in 'leaderboard'; known: {sorted(_KEYS)}")
    weights = _numbers(section.get("weights"), "weights", metrics, where)
    if "weights" not in section:
        weights = {name: DEFAULT_WEIGHT for name in sorted(metrics)}
    elif not any(weights.values()):
        raise ConfigError(f"{where}: leaderboard.weights gives every metric weight 0")
    alpha = section.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"{where}: leaderboard.alpha must be between 0 and 1, got {alpha!r}")
    reference = section.get("reference")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise ConfigError(f"{where}: leaderboard.reference must be a model name, got {reference!r}")
    return DecisionConfig(weights, _numbers(section.get("margins"), "margins", metrics, where), float(alpha),
                          reference)
