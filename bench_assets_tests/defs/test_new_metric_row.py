"""A metric is one module and one registry row.

The metric here (mean brightness, no weights) is defined in the test and added
as one row of ``METRICS``; nothing else is edited. Its Dagster asset, its
score table (Parquet partitions and the ``scores_brightness`` DuckDB view),
its leaderboard column, its demo scorer and its report columns must all follow.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import dagster as dg
import numpy as np
import pytest
import yaml

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.demo.setup import CONFIG_HEADER, prepare_demo
from bench_assets.metrics.base import ExtraColumn, ImageItem, Metric, TinyScorer
from bench_assets.metrics.registry import METRICS
from bench_assets.report.data import MetricInfo
from bench_assets.storage.warehouse import Warehouse
from dagster_helpers import materialize, query, refresh_leaderboard, register


class MeanBrightness(Metric):
    """Mean pixel value of the image, 0 (black) to 1 (white)."""

    name: ClassVar[str] = "brightness"
    table: ClassVar[str] = "scores_brightness"
    version: ClassVar[str] = "1"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {"batch_size": 8}
    description: ClassVar[str] = "Mean brightness of the image (0 black, 1 white)."
    extra_columns = (ExtraColumn("darkest", "darkest pixel"),)
    tiny_scorer = TinyScorer(dict)  # no weights: its options are its defaults

    def load(self, device: str, dtype: str = "fp32") -> None:
        self._device = device

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        rows = []
        for item in items:
            pixels = np.asarray(item.load(), dtype=np.float64) / 255.0
            rows.append({"prompt_id": item.prompt.id, "image_index": item.index, "value": float(pixels.mean()),
                         "darkest": float(pixels.min())})
        return rows


@pytest.fixture
def brightness_row(monkeypatch):
    """The one change a new metric needs: its row."""
    monkeypatch.setitem(METRICS, MeanBrightness.name, MeanBrightness)


def _brightness(path) -> float:
    from PIL import Image

    with Image.open(path) as image:
        return float((np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0).mean())


def test_a_new_row_gets_its_asset_its_score_table_and_its_leaderboard_column(brightness_row, data_dir, instance):
    defs = build_definitions(DataPaths(data_dir))
    brightness = defs.get_assets_def(dg.AssetKey("brightness"))
    assert brightness.partitions_def is not None, "partitioned like every metric asset"
    assert dg.AssetKey("brightness") in defs.get_assets_def(dg.AssetKey("leaderboard")).dependency_keys

    register(instance, "tiny-a")
    result = materialize(defs, instance, "tiny-a", "object",
                         asset_selection=[dg.AssetKey("images"), dg.AssetKey("brightness")])
    assert result.success

    parquet = Warehouse(data_dir / "warehouse").read_partition("scores_brightness", "tiny-a", "object")
    assert parquet is not None and parquet.height == 4, "its Parquet partition"

    assert refresh_leaderboard(defs, instance).success  # also refreshes bench.duckdb's views
    rows = query(data_dir, "select prompt_id, image_index, value, darkest, image_path, metric "
                           "from scores_brightness order by prompt_id, image_index")
    assert [(r[0], r[1]) for r in rows] == [("obj-1", 0), ("obj-1", 1), ("obj-2", 0), ("obj-2", 1)]
    for _, _, value, darkest, image_path, metric in rows:
        assert metric == "brightness"
        assert value == pytest.approx(_brightness(data_dir / "images" / image_path), abs=1e-12)
        assert 0.0 <= darkest <= value

    board = query(data_dir, "select brightness_mean, brightness_n from leaderboard "
                            "where model = 'tiny-a' and category = 'object'")
    assert board[0][0] == pytest.approx(float(np.mean([r[2] for r in rows])))
    assert board[0][1] == 4


def test_a_new_row_gets_its_demo_scorer_and_its_report_columns(brightness_row, data_dir):
    """The demo completes its config from the row's tiny scorer; the report reads its columns from the class."""
    config = data_dir / "config.yaml"
    written = yaml.safe_load(config.read_text())
    config.write_text(CONFIG_HEADER + yaml.safe_dump(written))  # as `bench demo` wrote it before the row existed
    prepare_demo(DataPaths(data_dir), n_models=0)
    assert yaml.safe_load(config.read_text())["metrics"] == {**written["metrics"], "brightness": {}}

    info = MetricInfo.of(METRICS["brightness"])
    assert info.columns == ({"name": "darkest", "label": "darkest pixel", "format": "text", "empty": ""},)
