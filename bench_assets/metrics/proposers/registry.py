"""Every proposer the workbench knows, by name: one row each.

A proposer is one module (a :class:`~bench_assets.metrics.proposers.base.Proposer`
subclass) and one row here. Its weights are the ones the metric it borrows
from is configured with (``Proposer.borrows_from``): the demo's tiny VLM and
tiny GenEval, or the real ones, with no section of their own in
``data/config.yaml``.
"""

from __future__ import annotations

from typing import Any, Mapping

from bench_assets.metrics.proposers.base import Proposer
from bench_assets.metrics.proposers.captioner import VlmCaptioner
from bench_assets.metrics.proposers.tagger import OwlTagger

PROPOSERS: dict[str, type[Proposer]] = {
    "captioner": VlmCaptioner,
    "tagger": OwlTagger,
}


def get_proposer(name: str, options: dict[str, Any] | None = None) -> Proposer:
    """A new, not yet loaded, proposer with ``options`` over its defaults."""
    try:
        cls = PROPOSERS[name]
    except KeyError:
        raise KeyError(f"unknown proposer {name!r}; known proposers: {sorted(PROPOSERS)}") from None
    return cls(options)


def configured_proposers(metric_options: Mapping[str, Mapping[str, Any]]) -> dict[str, Proposer]:
    """Every proposer, loading the weights its metric is configured with (``metrics:`` of the config)."""
    section = {name: dict(options or {}) for name, options in metric_options.items()}
    return {name: cls(cls.options_from_metrics(section)) for name, cls in PROPOSERS.items()}
