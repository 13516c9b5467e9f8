"""The registry: one entry per metric, consistent names, cheap to import."""

import subprocess
import sys

from bench_assets.demo.setup import TINY_SCORERS
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


def test_every_metric_has_a_tiny_scorer_for_demo_and_tests():
    assert set(TINY_SCORERS) == set(METRICS)


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
