"""The data model of the calibration tests (issue 12, acceptance 1).

50 prompts × 4 seeds; score = model effect + prompt effect (SD 1, shared by
every model) + item noise (SD 1, independent per model and image). Returns
per-prompt sums in the shape the leaderboard builds from the warehouse.
"""

from __future__ import annotations

import numpy as np

PROMPTS, SEEDS = 50, 4


def simulate(rng: np.random.Generator, effects, prompt_sd: float = 1.0, noise_sd: float = 1.0):
    """One simulated benchmark: per model, {"value": per-prompt sums, "n": per-prompt counts}."""
    prompt_effect = rng.normal(0.0, prompt_sd, size=(PROMPTS, 1))
    sums = []
    for effect in effects:
        items = effect + prompt_effect + rng.normal(0.0, noise_sd, size=(PROMPTS, SEEDS))
        sums.append({"value": items.sum(axis=1), "n": np.full(PROMPTS, float(SEEDS))})
    return sums


def mean_combine(totals):
    return totals["value"] / totals["n"]
