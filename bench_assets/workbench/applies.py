"""Which metrics will score a prompt, asked of the metrics themselves.

Each registered metric's own ``applies_to`` decides (the same call the
runner and ``bench status`` make), so the editor can never promise a score
the benchmark will not compute. ``DETAILS`` adds, for the metrics whose
applicability depends on structured metadata, what they will check, read
with the metric's own parser of that metadata: one row per metric.
"""

from __future__ import annotations

from typing import Any, Callable

from bench_assets.metrics.base import Metric
from bench_assets.metrics.dsg import gated_questions
from bench_assets.metrics.geneval import geneval_spec
from bench_assets.metrics.registry import METRICS, get_metric
from bench_assets.metrics.text_rendering import target_text_of
from bench_assets.metrics.tifa import tifa_questions
from bench_assets.prompts.prompt import Prompt


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


DETAILS: dict[str, Callable[[Prompt], str]] = {
    "geneval": lambda p: f"{(geneval_spec(p.metadata) or {}).get('tag', '?')} task",
    "tifa": lambda p: _plural(len(tifa_questions(p.metadata)), "question"),
    "dsg": lambda p: _plural(len(gated_questions(p.metadata)), "gated question"),
    "text_rendering": lambda p: f"target {target_text_of(p)!r}",
}


# Default options: applies_to reads only the prompt, never the weights.
METRIC_INSTANCES: list[Metric] = [get_metric(name) for name in METRICS]


def applying_metrics(prompt: Prompt) -> list[dict[str, Any]]:
    """``[{"metric", "detail"}]`` for every metric that applies to ``prompt``, in the registry's order."""
    return [{"metric": m.name, "detail": DETAILS[m.name](prompt) if m.name in DETAILS else ""}
            for m in METRIC_INSTANCES if m.applies_to(prompt)]


def applies_summary(prompt: Prompt) -> str:
    """One line: ``geneval: counting task · tifa: 3 questions · clip_score``."""
    return " · ".join(f"{a['metric']}: {a['detail']}" if a["detail"] else a["metric"] for a in applying_metrics(prompt))
