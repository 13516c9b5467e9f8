"""Item-level scores joined to prompts, and ``export`` in every format, against a real warehouse."""

from __future__ import annotations

import polars as pl
import pytest

from bench_assets.metrics.registry import METRICS
from bench_assets.core.naming import recorded_image_key
from bench_assets.storage.results import EXPORT_WRITERS, export_results, image_keys, item_scores, metric_extras
from bench_assets.storage.warehouse import Warehouse

TABLES = [m.table for m in METRICS.values()]


def test_every_score_row_gets_its_prompt_text_and_keeps_its_image(synthetic_results):
    wh = Warehouse(synthetic_results / "warehouse")
    prompts = dict(wh.read_table("prompts").select("prompt_id", "prompt").iter_rows())
    manifest = {(r["model"], r["prompt_id"], r["image_index"]): r["path"]
                for r in wh.read_table("images").iter_rows(named=True)}
    for table in TABLES:
        raw = wh.read_table(table)
        joined = item_scores(wh, table)
        assert joined.height == raw.height > 0, table
        assert joined["prompt"].to_list() == [prompts[p] for p in joined["prompt_id"]], table
        for row in joined.filter(pl.col("image_index").is_not_null()).iter_rows(named=True):
            assert row["image_path"] == manifest[(row["model"], row["prompt_id"], row["image_index"])]


def test_metric_extras_are_what_a_metric_stores_beyond_bookkeeping(synthetic_results):
    wh = Warehouse(synthetic_results / "warehouse")
    assert set(metric_extras(item_scores(wh, "scores_geneval"))) == {"task", "reason"}
    assert {"ocr_text", "target_text", "edit_distance"} <= set(metric_extras(item_scores(wh, "scores_text")))
    assert metric_extras(item_scores(wh, "scores_clip")) == []


READERS = {"csv": pl.read_csv, "json": pl.read_json, "parquet": pl.read_parquet}


@pytest.mark.parametrize("fmt", sorted(EXPORT_WRITERS))
def test_export_writes_every_table_and_reads_back_equal(synthetic_results, tmp_path, fmt):
    wh = Warehouse(synthetic_results / "warehouse")
    written = export_results(wh, TABLES, fmt, tmp_path / "out")
    names = {p.name for p in written}
    assert names == {f"{t}.{fmt}" for t in ("leaderboard", "leaderboard_long", "prompts", *TABLES)}
    assert not list((tmp_path / "out").glob(".*")), "no temp files left"
    board = READERS[fmt](tmp_path / "out" / f"leaderboard.{fmt}").sort("model", "category")
    expected = wh.read_table("leaderboard").sort("model", "category")
    assert board["clip_score_mean"].to_list() == pytest.approx(expected["clip_score_mean"].to_list(), rel=1e-12)
    tifa = READERS[fmt](tmp_path / "out" / f"scores_tifa.{fmt}").sort("model", "prompt_id", "image_index")
    truth = item_scores(wh, "scores_tifa").sort("model", "prompt_id", "image_index")
    assert tifa.height == truth.height
    assert tifa["value"].to_list() == pytest.approx(truth["value"].to_list(), rel=1e-12)
    assert tifa["prompt"].to_list() == truth["prompt"].to_list()
    assert tifa["image_path"].to_list() == truth["image_path"].to_list()
    assert tifa["answers"].to_list() == truth["answers"].to_list()


def test_an_unknown_format_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown export format 'xlsx'.*csv.*json.*parquet"):
        export_results(Warehouse(tmp_path), TABLES, "xlsx", tmp_path / "out")


def test_an_export_with_the_image_store_says_where_each_image_is(synthetic_results, tmp_path):
    from bench_assets.storage.store import open_store

    images = open_store(synthetic_results / "images")
    export_results(Warehouse(synthetic_results / "warehouse"), ["scores_clip"], "csv", tmp_path / "out", images=images)
    clip = pl.read_csv(tmp_path / "out" / "scores_clip.csv")
    assert clip["image_location"].to_list() == [images.location(k) for k in clip["image_path"]]
    assert all((synthetic_results / "images" / k).is_file() for k in clip["image_path"])


def test_image_keys_resolve_every_kind_of_recorded_location_as_recorded_image_key_does():
    recorded = ["m/c/p_i0_s0.png", "/m/c/p_i0_s0.png/", "/home/me/data/images/m/c/p_i0_s0.png",
                "C:\\data\\images\\m\\c\\x.png", "c:/data/images/m/c/x.png", "s3://bucket/x/images/m/c/y.png",
                "images\\m\\c\\z.png", "a/b", "/x", None]
    keys = image_keys(pl.Series("path", recorded))
    assert keys.name == "path"
    assert keys.to_list() == [None if r is None else recorded_image_key(r) for r in recorded]
    assert keys.to_list()[:3] == ["m/c/p_i0_s0.png"] * 3
