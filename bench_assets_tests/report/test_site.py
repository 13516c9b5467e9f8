"""Building the site from a finished warehouse: files, payloads, caching across rebuilds."""

from __future__ import annotations

import polars as pl

from bench_assets.metrics.registry import METRICS
from bench_assets.report.site import safe_name
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.report.helpers import compare_page, prompt_page, read_data_file


def test_rebuilding_with_unchanged_scores_makes_no_thumbnail_and_no_plot(built_report):
    data, first, second = built_report.data, built_report.first, built_report.second
    plots = built_report.plots_after_first
    images = Warehouse(data / "warehouse").read_table("images")
    assert (first.thumbnails.created, first.thumbnails.cached) == (images.height, 0)
    assert (second.thumbnails.created, second.thumbnails.cached) == (0, images.height)
    assert len(list((data / "report" / "thumbs").rglob("*.webp"))) == images["sha256"].n_unique()
    assert {p.name: p.stat().st_mtime_ns for p in (data / "report" / "plots").iterdir()} == plots
    assert len(plots) == 2 * len(METRICS), "a means and a cost plot per metric"
    assert not list((data / "report").glob(".*")), "no build or trash folders left behind"


def test_compare_payload_has_every_image_with_its_values(built_report):
    data = built_report.data
    wh = Warehouse(data / "warehouse")
    images = wh.read_table("images").filter(pl.col("category") == "object")
    clip = wh.read_table("scores_clip")
    page = compare_page(data / "report", "object")
    assert page["models"] == ["model-00", "model-01", "model-02"] and page["seeds"] == [0, 1]
    assert "text_rendering" in page["image_metrics"] and "lpips_diversity" in page["set_metrics"]
    for row in images.iter_rows(named=True):
        seed, thumb, full, values = page["cells"][row["model"]][row["prompt_id"]][str(row["image_index"])]
        assert seed == row["seed"] and thumb == f"thumbs/{row['sha256'][:2]}/{row['sha256']}.webp"
        assert (data / "report" / full).resolve() == (data / "images" / row["path"]).resolve()
        truth = clip.filter((pl.col("model") == row["model"]) & (pl.col("prompt_id") == row["prompt_id"])
                            & (pl.col("image_index") == row["image_index"]))["value"][0]
        assert values["clip_score"] == truth


def test_drill_down_payload_carries_each_metrics_reasons(built_report):
    data = built_report.data
    wh = Warehouse(data / "warehouse")
    page = prompt_page(data / "report", "obj-0000")
    assert page["prompt"]["text"] == "a object scene number 0"
    assert len(page["images"]) == 3 * 2
    geneval = wh.read_table("scores_geneval").filter(pl.col("prompt_id") == "obj-0000")
    for image in page["images"]:
        row = geneval.filter((pl.col("model") == image["model"]) & (pl.col("image_index") == image["index"]))
        assert image["scores"]["geneval"]["details"]["task"] == row["task"][0]
        assert image["scores"]["geneval"]["details"].get("reason", "") == row["reason"][0]
        assert set(image["scores"]["text_rendering"]["details"]) >= {"ocr_text", "target_text"}
        assert "answers" in image["scores"]["tifa"]["details"]
    assert {(s["model"], s["metric"]) for s in page["sets"]} == {
        (m, name) for m in ("model-00", "model-01", "model-02") for name, c in METRICS.items() if c.unit == "prompt"}


def test_overview_lists_exports_that_exist_and_every_leaderboard_column(built_report):
    data, first = built_report.data, built_report.first
    overview = read_data_file(data / "report", "overview")
    assert overview["exports"] and all((data / "report" / f).is_file() for f in overview["exports"])
    board = Warehouse(data / "warehouse").read_table("leaderboard")
    assert overview["leaderboard"]["columns"] == board.columns
    assert len(overview["leaderboard"]["rows"]) == board.height
    assert first.leaders == overview["leaders"] and set(first.leaders) == set(METRICS)


def test_odd_ids_get_distinct_safe_file_names():
    assert safe_name("obj-1") == "obj-1"
    odd = [safe_name(k) for k in ("a/b", "a b", "a?b", "../x", "", "ünï")]
    assert len(set(odd)) == len(odd)
    assert all("/" not in n and not n.startswith(".") and n for n in odd)


def test_thumbnails_of_images_no_longer_in_the_warehouse_are_removed(built_report, tmp_path):
    import shutil

    from bench_assets.report.site import build_report
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets_tests.report.report_fixtures import METRIC_INFO

    data = tmp_path / "data"
    shutil.copytree(built_report.data, data)
    wh = Warehouse(data / "warehouse")
    gone = wh.read_partition(IMAGES_TABLE, "model-02", "colour")
    wh.partition_file(IMAGES_TABLE, "model-02", "colour").unlink()
    summary = build_report(wh, data / "report", data / "images", METRIC_INFO)
    assert (summary.thumbnails.created, summary.thumbnails.removed) == (0, gone.height)
    left = {p.stem for p in (data / "report" / "thumbs").rglob("*.webp")}
    assert left == set(wh.read_table(IMAGES_TABLE)["sha256"]) and not left & set(gone["sha256"])


def test_overview_tells_the_page_how_each_metric_shows_its_reasons(built_report):
    """The drill-down's reasons come from each metric's own declaration, not from a table in report.js."""
    overview = read_data_file(built_report.data / "report", "overview")
    shown = {m["name"]: m for m in overview["metrics"]}
    assert set(shown) == set(METRICS)
    for name, cls in METRICS.items():
        assert shown[name]["columns"] == [c.as_json() for c in cls.extra_columns], name
        assert shown[name]["value_label"] == cls.value_label, name
    geneval = {c["name"]: c for c in shown["geneval"]["columns"]}
    assert geneval["reason"] == {"name": "reason", "label": "reason", "format": "reason", "empty": "all requirements met"}
    assert geneval["boxes"]["format"] == "hidden"
    assert shown["vqascore"]["value_label"] == "P(yes)"
    script = (built_report.data / "report" / "report.js").read_text()
    assert not [name for name in METRICS if name in script], "the page knows no metric by name"
