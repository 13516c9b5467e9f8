"""One synthetic report for the site and server tests, built twice with unchanged scores."""

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

