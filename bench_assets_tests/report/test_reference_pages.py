"""A reference set's page data: the set (size, fingerprint, thumbnails) and every model scored against it."""

from __future__ import annotations

import polars as pl

from bench_assets.report.site import build_report
from bench_assets.storage.distribution_board import distribution_board
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.report.helpers import read_data_file
from bench_assets_tests.report.report_fixtures import METRIC_INFO, REFERENCE_IMAGES, build_reference_report


def test_reference_page_has_the_set_its_thumbnails_and_each_models_metrics_with_n(tmp_path):
    built = build_reference_report(tmp_path)
    report = tmp_path / "report"
    overview = read_data_file(report, "overview")
    assert overview["distribution"]["references"] == {"gone": "reference/gone", "ref": "reference/ref"}
    assert overview["distribution"]["metrics"] == ["fid", "kid", "precision"]
    page = read_data_file(report, "reference/ref")
    assert (page["size"], page["fingerprint"], page["registered"]) == (REFERENCE_IMAGES, built.reference.fingerprint,
                                                                        True)
    assert [t["name"] for t in page["thumbs"]] == [f"img-{i}.png" for i in range(REFERENCE_IMAGES)]
    assert all((report / t["thumb"]).is_file() for t in page["thumbs"])
    board = distribution_board(Warehouse(tmp_path / "warehouse")).filter(pl.col("reference") == "ref")
    assert len(page["rows"]) == board.height == 2 * 3 * 2
    fid = {r["model"]: r for r in page["rows"] if r["metric"] == "fid" and r["category"] == "all"}
    assert (fid["tiny-a"]["value"], fid["tiny-a"]["n_generated"], fid["tiny-a"]["n_reference"]) == (30.0, 8, 5)
    assert [(fid[m]["rank"], fid[m]["ranked_among"]) for m in ("tiny-a", "tiny-b")] == [(1, 1), (1, 1)], \
        "another version of the set: not ranked against each other"
    assert fid["tiny-a"]["note"].startswith("† n=5 < 10,000") and fid["tiny-a"]["comparable"] is False
    assert fid["tiny-a"]["current"] and not fid["tiny-b"]["current"], "tiny-b was scored against an older set"
    gone = read_data_file(report, "reference/gone")
    assert (gone["registered"], gone["size"], gone["thumbs"], gone["models"]) == (False, 100, [], ["tiny-a"])


def test_a_rebuild_keeps_the_reference_thumbnails(tmp_path):
    built = build_reference_report(tmp_path)
    assert built.summary.thumbnails.created == REFERENCE_IMAGES
    again = build_report(Warehouse(tmp_path / "warehouse"), tmp_path / "report", tmp_path / "images", METRIC_INFO,
                         references={"ref": built.reference})
    assert (again.thumbnails.created, again.thumbnails.cached, again.thumbnails.removed) == (0, REFERENCE_IMAGES, 0)
    dropped = build_report(Warehouse(tmp_path / "warehouse"), tmp_path / "report", tmp_path / "images", METRIC_INFO)
    assert dropped.thumbnails.removed == REFERENCE_IMAGES, "a set no longer registered leaves no thumbnail behind"
