"""Speed of the decision statistics: the ``comparisons`` table and the ranked leaderboard.

A synthetic warehouse (K models × prompts × images, three metrics: a mean, a
set metric and GenEval's task-mean) timed through the same storage functions
the assets call. Every pair costs one paired bootstrap (1,000 resamples) and
one sign-flip test (2,000 permutations) per metric and category.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_warehouse(root: Path, models: int, prompts: int, images: int, categories: int):
    from bench_assets.metrics.geneval import TASKS, GenEval
    from bench_assets.storage.leaderboard import MetricColumn
    from bench_assets.storage.versions import VersionStore

    store = VersionStore(root)
    rng = np.random.default_rng(0)
    effect = rng.normal(0, 1, prompts)
    for m in range(models):
        for c in range(categories):
            mine = [p for p in range(prompts) if p % categories == c]
            key = lambda p, k: {"model": f"m{m}", "category": f"c{c}", "prompt_id": f"p{p}", "image_index": k}
            clip = [{**key(p, k), "value": 25 + 0.1 * m + effect[p] + rng.normal()} for p in mine for k in range(images)]
            geneval = [{**key(p, k), "value": float(rng.random() < 0.5), "task": TASKS[p % len(TASKS)]}
                       for p in mine for k in range(images)]
            diversity = [{**key(p, None), "value": rng.random()} for p in mine]
            store.warehouse.write_partition("scores_clip", f"m{m}", f"c{c}", clip)
            store.warehouse.write_partition("scores_geneval", f"m{m}", f"c{c}", geneval)
            store.warehouse.write_partition("scores_lpips", f"m{m}", f"c{c}", diversity)
    metrics = [MetricColumn("clip_score", "scores_clip"), MetricColumn("lpips_diversity", "scores_lpips"),
               MetricColumn("geneval", "scores_geneval", True, GenEval.summary_columns, GenEval.combine)]
    return store, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--images-per-prompt", type=int, default=4)
    parser.add_argument("--categories", type=int, default=4)
    args = parser.parse_args(argv)

    from bench_assets.core.decision import DecisionConfig
    from bench_assets.storage.comparisons import build_comparisons
    from bench_assets.storage.ranking import leaderboard_tables

    with tempfile.TemporaryDirectory() as tmp:
        store, metrics = synthetic_warehouse(Path(tmp), args.models, args.prompts, args.images_per_prompt,
                                             args.categories)
        decision = DecisionConfig(weights={m.name: 1.0 for m in metrics})
        start = time.perf_counter()
        table = build_comparisons(store, metrics, decision)
        compared = time.perf_counter() - start
        start = time.perf_counter()
        leaderboard_tables(store, metrics, decision, table, None)
        ranked = time.perf_counter() - start
    pairs = args.models * (args.models - 1) // 2
    print(f"{args.models} models ({pairs} pairs) × {args.prompts} prompts × {args.images_per_prompt} images, "
          f"{args.categories} categories, 3 metrics + composite")
    print("| step | rows | seconds | ms per paired test |")
    print("|---|---|---|---|")
    print(f"| comparisons | {table.height} | {compared:.2f} | {1000 * compared / max(table.height, 1):.1f} |")
    print(f"| leaderboard (rank intervals, tiers, composite) | | {ranked:.2f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
