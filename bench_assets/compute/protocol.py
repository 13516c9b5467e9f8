"""The compute-backend protocol: the calls the assets make, whichever machine does the work.

Every backend (``compute/local.py``, ``compute/modal_pipes.py``) implements
these three calls; the Dagster layer calls nothing else. Kept apart from the
``BACKENDS`` table (``compute/backend.py``) so a backend module can name the
protocol's types without importing the table that imports it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from bench_assets.generation.generate import GenerationReport, GenerationRequest
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.runner import ScoreOutcome

Log = Callable[[str], None]
StopCheck = Callable[[], bool]


@runtime_checkable
class ComputeBackend(Protocol):
    """What an asset step asks of the machine that runs its work."""

    def generate(self, request: GenerationRequest, log: Log = ..., should_stop: StopCheck = ...) -> GenerationReport:
        """Fill the request's image set (only what is missing) and report what was made and what failed."""
        ...

    def score(self, metric_name: str, options: dict[str, Any], items: Sequence[ImageItem],
              existing: list[dict[str, Any]], log: Log = ...) -> ScoreOutcome:
        """Score ``items`` with the metric; rows in ``existing`` that still match are kept, not recomputed."""
        ...

    def stop_signals(self) -> AbstractContextManager[StopCheck]:
        """For the step's duration: how a stop signal (a run terminated in the UI) reaches the work.

        Yields ``should_stop()``, checked between batches.
        """
        ...
