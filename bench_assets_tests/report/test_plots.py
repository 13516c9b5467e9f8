"""The report's plots: the Pareto front against brute force, and real SVG files from matplotlib."""

from __future__ import annotations

import numpy as np
import pytest

from bench_assets.report.plots import ModelPoint, cost_plot, means_plot, pareto_front


def _brute_force_front(points, higher_is_better):
    sign = 1 if higher_is_better else -1
    front = []
    for p in points:
        beaten = False
        for q in points:
            cheaper_or_equal, better_or_equal = q.cost <= p.cost, sign * q.mean >= sign * p.mean
            strictly = q.cost < p.cost or sign * q.mean > sign * p.mean
            beaten |= cheaper_or_equal and better_or_equal and strictly
        if not beaten:
            front.append(p.model)
    return sorted(front)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_pareto_front_matches_brute_force_on_random_models(higher_is_better):
    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(1, 12))
        # rounded values make ties (same cost or same quality) common
        points = [ModelPoint(f"m{i}", float(np.round(rng.uniform(0, 1), 1)), cost=float(np.round(rng.uniform(0, 5), 0)))
                  for i in range(n)]
        front = pareto_front(points, higher_is_better)
        assert sorted(p.model for p in front) == _brute_force_front(points, higher_is_better), trial
        assert [p.cost for p in front] == sorted(p.cost for p in front)


def test_a_known_front_and_models_without_cost_are_left_out():
    points = [ModelPoint("cheap-bad", 0.2, cost=1.0), ModelPoint("dear-good", 0.9, cost=5.0),
              ModelPoint("dominated", 0.1, cost=3.0), ModelPoint("no-cost", 1.0)]
    assert [p.model for p in pareto_front(points)] == ["cheap-bad", "dear-good"]
    # lower is better: "dominated" is now better than cheap-bad (costlier, so on the front); dear-good is not
    assert [p.model for p in pareto_front(points, higher_is_better=False)] == ["cheap-bad", "dominated"]


def test_plots_are_svg_with_the_model_names_and_identical_for_identical_data(tmp_path):
    points = [ModelPoint("alpha-model", 0.4, 0.3, 0.5, cost=2.0), ModelPoint("beta-model", 0.6, 0.5, 0.7, cost=3.0)]
    first = means_plot("clip_score", points, tmp_path / "a.svg").read_text()
    second = means_plot("clip_score", points, tmp_path / "b.svg").read_text()
    assert first.startswith("<?xml") and "<svg" in first
    assert "alpha-model" in first and "beta-model" in first
    assert first == second, "no timestamps or random ids: unchanged data, unchanged file"
    cost = cost_plot("clip_score", points, True, tmp_path / "c.svg").read_text()
    assert "Pareto front" in cost and "GPU-seconds per image" in cost
    assert "href=\"http" not in cost and "url(http" not in cost, "nothing to fetch"
