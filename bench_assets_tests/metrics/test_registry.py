"""The registry: one entry per metric, consistent names, cheap to import."""

import subprocess
import sys

from bench_assets.demo.setup import tiny_scorer_options
from bench_assets.metrics.base import TinyScorer
from bench_assets.metrics.registry import METRICS, get_metric

import pytest


def test_entries_are_consistent_and_tables_unique():
    assert {"clip_score", "lpips_diversity"} <= set(METRICS)
    for key, cls in METRICS.items():
        assert cls.name == key
        assert cls.table.startswith("scores_")
        assert cls.unit in ("image", "prompt")
        assert cls.version
    assert len({cls.table for cls in METRICS.values()}) == len(METRICS)


def test_every_metric_names_a_tiny_scorer_and_the_vlm_metrics_share_one():
    for name, cls in METRICS.items():
        assert isinstance(cls.tiny_scorer, TinyScorer), f"{name} names no tiny scorer"
    assert METRICS["vqascore"].tiny_scorer == METRICS["tifa"].tiny_scorer == METRICS["dsg"].tiny_scorer
    folders = [cls.tiny_scorer.folder for cls in METRICS.values() if cls.tiny_scorer.folder]
    assert len(set(folders)) == len({cls.tiny_scorer for cls in METRICS.values() if cls.tiny_scorer.folder})


def test_metrics_sharing_a_tiny_scorer_build_it_once(monkeypatch, tmp_path):
    """The demo reads each row's scorer: equal scorers are built once, each metric gets its own copy."""
    calls = []

    def build(folder):
        calls.append(folder)
        return {"model": str(folder)}

    shared = TinyScorer(build, "shared")
    for name in ("vqascore", "tifa"):
        monkeypatch.setattr(METRICS[name], "tiny_scorer", shared)
    options = tiny_scorer_options(tmp_path, ["vqascore", "tifa", "msssim_diversity"])
    assert calls == [tmp_path / "shared"]
    assert options["vqascore"] == options["tifa"] == {"model": str(tmp_path / "shared")}
    assert options["vqascore"] is not options["tifa"]
    assert options["msssim_diversity"] == METRICS["msssim_diversity"].tiny_scorer.options(tmp_path)


def test_a_metric_without_a_tiny_scorer_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(METRICS["tifa"], "tiny_scorer", None)
    with pytest.raises(ValueError, match="tifa"):
        tiny_scorer_options(tmp_path, ["clip_score", "tifa"])


def test_unknown_metric_and_option_are_named():
    with pytest.raises(KeyError, match="clip_score"):
        get_metric("clip_scor")
    with pytest.raises(ValueError, match="colour"):
        get_metric("clip_score", {"colour": 1})


def test_registry_import_is_cheap():
    """The Dagster layer imports the registry; that must not pull in torch or the scorer libraries."""
    code = (
        "import sys, bench_assets.metrics.registry as r; "
        "heavy = sorted(m for m in ('torch', 'open_clip', 'lpips', 'transformers', 'torchmetrics',"
        " 'rapidocr_onnxruntime') if m in sys.modules); "
        "assert not heavy, heavy; print(len(r.METRICS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == len(METRICS)


@pytest.mark.parametrize("name", list(METRICS))
def test_example_rows_hold_every_column_the_aggregate_reads(name):
    """The synthetic warehouse writes ``example_row``s: the metric's leaderboard aggregate must work on them."""
    import math

    import numpy as np
    import polars as pl

    cls = METRICS[name]
    rows = [{"model": "m", "category": "c", "prompt_id": f"p{i // 2}", "image_index": i % 2,
             **cls.example_row(i // 2, draw)} for i, draw in enumerate(np.linspace(0.05, 0.95, 12))]
    frame = pl.DataFrame(rows).select(**cls.summary_columns())
    totals = {column: np.array([frame[column].sum()]) for column in frame.columns}
    aggregate = float(np.asarray(cls.combine(totals)).ravel()[0])
    assert math.isfinite(aggregate), name
    declared = {c.name for c in cls.extra_columns if c.format != "hidden"}
    assert declared <= set(rows[0]), f"{name}: example rows lack declared columns {declared - set(rows[0])}"
