"""Finished benchmarks for the report's tests, one of each per session (the root conftest exposes them).

- ``built_report``: the synthetic warehouse's report, built twice with unchanged scores (fast);
- ``report_run``: a real small run, two tiny models × two categories and every metric, then
  the ``report`` asset twice (slow).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench_assets.metrics.registry import METRICS
from bench_assets.report.data import MetricInfo
from bench_assets.report.site import ReportSummary, build_report
from bench_assets.storage.warehouse import Warehouse

METRIC_INFO = [MetricInfo.of(m) for m in METRICS.values()]


@dataclass
class BuiltReport:
    data: Path
    first: ReportSummary
    second: ReportSummary
    plots_after_first: dict[str, int]  # plot file -> mtime


@pytest.fixture(scope="session")
def built_report(synthetic_results, tmp_path_factory) -> BuiltReport:
    data = tmp_path_factory.mktemp("built_report") / "data"
    shutil.copytree(synthetic_results, data)
    wh = Warehouse(data / "warehouse")
    first = build_report(wh, data / "report", data / "images", METRIC_INFO)
    plots = {p.name: p.stat().st_mtime_ns for p in (data / "report" / "plots").iterdir()}
    second = build_report(wh, data / "report", data / "images", METRIC_INFO)
    return BuiltReport(data, first, second, plots)


@dataclass
class RealRun:
    """Two tiny models × two categories through the real assets, then the report asset twice."""

    data: Path
    leaderboard_meta: dict
    report_meta: list[dict]  # metadata of the two report materializations
    thumbs_after: list[int]  # thumbnail files on disk after each
    thumbs_before_report: int = 0  # thumbnail files the images step made, before any report


def _thumb_files(data: Path) -> int:
    return len(list((data / "report" / "thumbs").rglob("*.webp")))


@pytest.fixture(scope="session")
def report_run(tiny_sources, tmp_path_factory) -> RealRun:
    """Slow (every metric, four partitions): built once for the session."""
    import dagster as dg

    from bench_assets.core.paths import DataPaths
    from bench_assets.definitions import build_definitions
    from bench_assets.defs.active_runs import model_run_request
    from bench_assets_tests.conftest import make_data_dir
    from bench_assets_tests.defs.dagster_helpers import (
        materialization_metadata, refresh_leaderboard, register,
    )

    data = make_data_dir(tmp_path_factory.mktemp("report_run"), tiny_sources)
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test() as instance:
        env.setenv("BENCH_DATA_DIR", str(data))
        env.delenv("BENCH_CONFIG", raising=False)
        env.delenv("BENCH_PROMPT_SUITE", raising=False)
        defs = build_definitions(DataPaths(data))
        register(instance, "tiny-a", "tiny-b")
        job = defs.resolve_job_def("benchmark")
        for model in ("tiny-a", "tiny-b"):  # one run per model, as the sensor requests it
            request = model_run_request(model, ["object", "colour"], ["object", "colour"], None, "test")
            assert job.execute_in_process(instance=instance, tags=request.tags).success, model
        made = _thumb_files(data)
        leaderboard = refresh_leaderboard(defs, instance)
        metas, thumbs = [], []
        for _ in range(2):
            result = defs.resolve_job_def("refresh_report").execute_in_process(instance=instance)
            assert result.success
            metas.append(materialization_metadata(result, "report"))
            thumbs.append(_thumb_files(data))
    return RealRun(data, materialization_metadata(leaderboard, "leaderboard"), metas, thumbs, made)


@dataclass
class ReferenceReport:
    """A report of distribution rows only: reference set ``ref`` (five images) and ``gone`` (rows, no folder)."""

    root: Path
    reference: object  # the loaded ReferenceSet
    summary: ReportSummary


REFERENCE_IMAGES = 5


def build_reference_report(root: Path) -> ReferenceReport:
    """tiny-a scored on 8 images against ``ref`` (FID below its 10,000: marked), tiny-b against an older ``ref``."""
    from PIL import Image

    from bench_assets.references.registry import load_reference_set
    from bench_assets_tests.storage.distribution_fixtures import score_row, write_rows

    folder = root / "references" / "ref"
    folder.mkdir(parents=True)
    for i in range(REFERENCE_IMAGES):
        Image.new("RGB", (24, 16), (40 * i, 255 - 40 * i, 90)).save(folder / f"img-{i}.png")
    reference = load_reference_set(root / "references", "ref")
    rows = []
    for model, fid, fingerprint in (("tiny-a", 30.0, reference.fingerprint), ("tiny-b", 20.0, "an-older-ref")):
        for metric, value, half in (("fid", fid, 2.0), ("kid", fid / 1000, 0.004), ("precision", 0.5, 0.1)):
            for category in ("all", "object"):
                rows.append({**score_row(model, metric, value, half, n=8, n_reference=REFERENCE_IMAGES,
                                         category=category), "reference_fingerprint": fingerprint})
    rows.append(score_row("tiny-a", "fid", 50.0, reference="gone", n=8, n_reference=100))
    warehouse = Warehouse(root / "warehouse")
    write_rows(warehouse, rows)
    summary = build_report(warehouse, root / "report", root / "images", METRIC_INFO, references={"ref": reference})
    return ReferenceReport(root, reference, summary)
