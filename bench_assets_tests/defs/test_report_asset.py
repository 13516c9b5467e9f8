"""The ``report`` asset after a real run: its metadata, the leaderboard's link, cached thumbnails."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions

# Tests sharing the session's `report_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("report_run")


def test_report_materializes_with_path_url_and_headline_figures(report_run):
    meta = report_run.report_meta[0]
    index = report_run.data / "report" / "index.html"
    assert Path(meta["path"]) == index and index.is_file()
    assert meta["url"] == index.resolve().as_uri()
    assert (meta["models"], meta["images"]) == (2, 16)
    assert "| clip_score | tiny-" in meta["leaders"]
    assert report_run.leaderboard_meta["report"] == index.resolve().as_uri()


def test_the_images_step_makes_the_thumbnails_and_no_report_makes_them_again(report_run):
    first, second = report_run.report_meta
    assert report_run.thumbs_before_report == 16, "made by the images step, with the images"
    assert (first["thumbnails_created"], first["thumbnails_cached"]) == (0, 16)
    assert (second["thumbnails_created"], second["thumbnails_cached"]) == (0, 16)
    assert report_run.thumbs_after == [16, 16], "thumbnail files on disk, counted"


def test_report_is_downstream_of_the_leaderboard_and_the_distribution_scores_with_the_same_automation(data_dir):
    defs = build_definitions(DataPaths(data_dir))
    graph = defs.resolve_asset_graph()
    report = graph.get(dg.AssetKey("report"))
    leaderboard = graph.get(dg.AssetKey("leaderboard"))
    assert report.parent_keys == {dg.AssetKey("leaderboard"), dg.AssetKey("distribution_scores")}
    assert report.automation_condition == leaderboard.automation_condition is not None
