"""What the pages are given: leaderboard columns grouped whatever they are, health, worst prompts."""

from __future__ import annotations

import shutil

import polars as pl

from bench_assets.metrics.registry import METRICS
from bench_assets.report.data import (
    MetricInfo, ReportInputs, SiteInputs, health, image_rows, leaderboard_layout, model_payload, model_summary,
    set_values, shown_models,
)
from bench_assets.storage.status import FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

METRIC_INFO = [MetricInfo.of(m) for m in METRICS.values()]


def test_layout_groups_metric_columns_and_keeps_unknown_columns_generic():
    columns = ["model", "category", "rank", "mean_rank",
               "text_mean", "text_ci_low", "text_ci_high", "text_n",
               "text_rendering_mean", "text_rendering_ci_low", "text_rendering_ci_high", "text_rendering_n",
               "text_rendering_rank", "text_rendering_rank_low", "text_rendering_rank_high",
               "human_rating_mean", "gpu_seconds", "composite_score"]
    layout = leaderboard_layout(columns, ["text_rendering", "text"])
    groups = {g["name"]: g["fields"] for g in layout["metrics"]}
    assert groups == {
        "text_rendering": ["mean", "ci_low", "ci_high", "n", "rank", "rank_low", "rank_high"],
        "text": ["mean", "ci_low", "ci_high", "n"],
        "human_rating": ["mean"],  # a column group nobody registered still shows
    }
    assert [g["name"] for g in layout["metrics"]] == ["text_rendering", "text", "human_rating"]
    assert layout["extra"] == ["rank", "mean_rank", "gpu_seconds", "composite_score"]


def test_health_counts_failed_and_missing_images_per_model(synthetic_results, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_results / "warehouse", data / "warehouse")
    wh = Warehouse(data / "warehouse")
    # model-01 lost one category's images; model-02 had two images fail and one partition fail to load
    (wh.partition_file(IMAGES_TABLE, "model-01", "colour")).unlink()
    wh.write_partition(FAILURES_TABLE, "model-02", "object", [
        {"model": "model-02", "category": "object", "stage": "generate", "prompt_id": "obj-0000",
         "image_index": i, "seed": i, "error": "CUDA out of memory", "failed_at": "now"} for i in (0, 1)
    ], schema=FAILURE_SCHEMA)
    wh.write_partition(FAILURES_TABLE, "model-02", "colour", [
        {"model": "model-02", "category": "colour", "stage": "load", "prompt_id": None, "image_index": None,
         "seed": None, "error": "broken.safetensors: not a safetensors file", "failed_at": "now"}
    ], schema=FAILURE_SCHEMA)
    wh.write_partition(FAILURES_TABLE, "broken", "object", [
        {"model": "broken", "category": "object", "stage": "load", "prompt_id": None, "image_index": None,
         "seed": None, "error": "broken.safetensors: truncated header", "failed_at": "now"}
    ], schema=FAILURE_SCHEMA)
    dropped = {"new-model": {"kind": "diffusers", "source": "new-model"}}  # in data/models, never run yet
    rows = {r["model"]: r for r in health(_site(wh, dropped))}
    # never generated anything: every image missing, at the default images per prompt
    assert (rows["broken"]["images"], rows["broken"]["missing"]) == (0, 6 * 4)
    assert rows["broken"]["errors"] == [{"category": "object", "error": "broken.safetensors: truncated header"}]
    assert (rows["new-model"]["expected"], rows["new-model"]["missing"]) == (24, 24)
    # 6 prompts × 2 images per prompt (from the manifests' settings, not the default 4)
    assert rows["model-00"] == {"model": "model-00", "expected": 12, "images": 12, "failed": 0, "missing": 0,
                                "errors": []}
    assert (rows["model-01"]["images"], rows["model-01"]["missing"]) == (6, 6)
    assert (rows["model-02"]["failed"], rows["model-02"]["missing"]) == (2, 0)
    assert rows["model-02"]["errors"] == [{"category": "colour", "error": "broken.safetensors: not a safetensors file"}]


def test_worst_prompts_are_the_lowest_means_with_their_worst_image(synthetic_results, tmp_path):
    wh = Warehouse(synthetic_results / "warehouse")
    inputs = _model_inputs(wh, "model-00")

    images = image_rows(inputs, {}, "../images/")
    page = model_payload(inputs, images, set_values(inputs), "model-00")
    clip = wh.read_table("scores_clip").filter(pl.col("model") == "model-00")
    means = clip.group_by("prompt_id").agg(pl.col("value").mean()).sort("value")
    worst = page["worst"]["clip_score"]
    assert [w["prompt_id"] for w in worst] == means["prompt_id"].head(5).to_list()
    assert [w["value"] for w in worst] == means["value"].head(5).to_list()
    first = clip.filter(pl.col("prompt_id") == worst[0]["prompt_id"]).sort("value")
    assert worst[0]["index"] == first["image_index"][0], "the image shown is that prompt's worst"
    lpips = wh.read_table("scores_lpips").filter(pl.col("model") == "model-00").sort("value")
    assert page["worst"]["lpips_diversity"][0]["value"] == lpips["value"][0]
    assert page["fingerprints"] == ["fp-model-00"] and page["settings"]["images_per_prompt"] == 2


def _model_inputs(wh: Warehouse, model: str, dropped: dict | None = None) -> ReportInputs:
    return ReportInputs.read_model(wh, METRIC_INFO, model, wh.read_table("prompts"), wh.read_table("leaderboard"),
                                   dropped)


def _site(wh: Warehouse, dropped: dict) -> SiteInputs:
    """The shared pages' inputs as a build makes them: each model's summary from its own rows."""
    listed = set(dropped) | set(wh.read_table(IMAGES_TABLE)["model"]) | set(wh.read_table(FAILURES_TABLE)["model"])
    summaries = {}
    for model in sorted(listed):
        own = _model_inputs(wh, model, dropped)
        rows, sets = image_rows(own, {}, "../images/"), set_values(own)
        summaries[model] = model_summary(own, rows, sets, 0, default_images_per_prompt=4)
    board = wh.read_table("leaderboard")
    shown = shown_models(dropped, board, summaries)
    return SiteInputs(board, wh.read_table("prompts"), METRIC_INFO, {m: summaries[m] for m in shown}, dropped)
