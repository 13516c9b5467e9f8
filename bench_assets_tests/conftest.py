"""Shared fixtures: tiny random-weight models built once per session and saved
as real files, and a fresh data directory (models, prompt suite, config) per test.

Nothing here touches the network: HF_HUB_OFFLINE is set for the whole session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def _threads_per_worker() -> int:
    """The cores each xdist worker gets: torch's default (every core, in every worker) oversubscribes the
    machine, which cost the torch-heavy tests about a quarter of their time on 2 cores with `-n 2`."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return max(1, (os.cpu_count() or 1) // workers)


if os.environ.get("PYTEST_XDIST_WORKER"):  # set before torch is imported; `bench run` subprocesses inherit it
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads_per_worker()))
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

TEST_SETTINGS = {"width": 64, "height": 64, "steps": 2, "images_per_prompt": 2, "batch_size": 8, "sampler": "euler"}
TEST_PROMPTS = [
    {"id": "obj-1", "category": "object", "prompt": "a red bicycle",
     "metadata": {"objects": [{"name": "bicycle", "count": 1, "colour": "red"}]}},
    {"id": "obj-2", "category": "object", "prompt": "a glass teapot on a table", "negative_prompt": "blurry"},
    {"id": "col-1", "category": "colour", "prompt": "a blue car",
     "metadata": {"objects": [{"name": "car", "count": 1, "colour": "blue"}]}},
    {"id": "col-2", "category": "colour", "prompt": "a yellow umbrella"},
]


@pytest.fixture(scope="session")
def tiny_sources(tmp_path_factory) -> Path:
    """Two tiny SD pipelines (a diffusers folder and a single file) and every tiny scorer."""
    from bench_assets.demo.setup import tiny_scorer_options
    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_diffusers_folder, save_single_file

    root = tmp_path_factory.mktemp("tiny_sources")
    save_diffusers_folder(build_tiny_sd_pipeline(seed=1), root / "models" / "tiny-a")
    save_single_file(build_tiny_sd_pipeline(seed=2), root / "models" / "tiny-b.safetensors")
    (root / "scorers.json").write_text(json.dumps(tiny_scorer_options(root / "scorers")))
    return root


def make_data_dir(root: Path, sources: Path, models: tuple[str, ...] = ("tiny-a", "tiny-b")) -> Path:
    """A data dir laid out like the repo's, with copies of the tiny models."""
    data = root / "data"
    (data / "models").mkdir(parents=True)
    (data / "prompts").mkdir()
    for name in models:
        add_model(data, sources, name)
    with (data / "prompts" / "default.jsonl").open("w") as handle:
        for row in TEST_PROMPTS:
            handle.write(json.dumps(row) + "\n")
    scorers = json.loads((sources / "scorers.json").read_text())
    (data / "config.yaml").write_text(yaml.safe_dump({"metrics": scorers}))
    return data


def add_model(data: Path, sources: Path, name: str, settings: dict | None = None) -> Path:
    src_models = sources / "models"
    for item in src_models.iterdir():
        if item.name == name or item.name.startswith(f"{name}."):
            target = data / "models" / item.name
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, target)
    (data / "models" / f"{name}.settings.yaml").write_text(yaml.safe_dump(settings or TEST_SETTINGS))
    folder = data / "models" / name
    return folder if folder.is_dir() else data / "models" / f"{name}.safetensors"


@pytest.fixture
def data_dir(tmp_path, tiny_sources, monkeypatch) -> Path:
    data = make_data_dir(tmp_path, tiny_sources)
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_PROMPT_SUITE", raising=False)
    return data


REPO = Path(__file__).resolve().parents[1]


def demo_prompts() -> list[dict]:
    """The fewest prompts of the repo's default suite that every metric applies to, in one category.

    Every score table then exists (a metric added later is covered without editing this), at the
    least generation and scoring cost.
    """
    from bench_assets.prompts.suites import load_suite
    from bench_assets.metrics.registry import METRICS

    suite_file = REPO / "data" / "prompts" / "default.jsonl"
    chosen: list = []
    for metric in (cls() for cls in METRICS.values()):
        if not any(metric.applies_to(p) for p in chosen):
            chosen.append(next(p for p in load_suite(suite_file).prompts if metric.applies_to(p)))
    raw = {row["id"]: row for row in map(json.loads, suite_file.read_text().splitlines()) if row}
    return [{**raw[p.id], "category": "object"} for p in chosen]


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory, tiny_sources) -> Path:
    """A demo-sized data dir (one tiny model, one category, :func:`demo_prompts`) with its warehouse
    and bench.duckdb, built as a user does: `bench run`.

    Shared by the tests that only read it (README queries and commands, CLI output); set
    BENCH_DATA_DIR to it in the test.
    """
    from bench_assets.cli import main

    root = tmp_path_factory.mktemp("demo_warehouse")
    data = make_data_dir(root, tiny_sources, models=("tiny-a",))
    (data / "prompts" / "default.jsonl").write_text("".join(json.dumps(p) + "\n" for p in demo_prompts()))
    for path in (data / "models").rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))  # copied long ago: no settling wait
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCH_DATA_DIR", str(data))
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        patch.delenv("BENCH_CONFIG", raising=False)
        patch.delenv("BENCH_PROMPT_SUITE", raising=False)
        assert main(["run"]) == 0
    return data


@pytest.fixture
def instance():
    import dagster as dg

    with dg.instance_for_test() as inst:
        yield inst


# A real PostgreSQL server (Debian's postgresql), for the team-deployment tests.
from bench_assets_tests.postgres_server import postgres_server  # noqa: E402,F401
# The real headless browser (Debian's chromium via Playwright), for the page tests.
from bench_assets_tests.browser import browser  # noqa: E402,F401
# Finished benchmarks with their reports, for the report's tests (report_run is slow: once per session).
from bench_assets_tests.report.report_fixtures import built_report, report_run  # noqa: E402,F401
# A real S3-compatible server (moto, its own process) for the object-storage tests.
from bench_assets_tests.s3_server import s3_env, s3_server  # noqa: E402,F401


@pytest.fixture(scope="session")
def synthetic_results(tmp_path_factory) -> Path:
    """A small finished benchmark written straight into a warehouse (no generation): a data dir.

    Shared by the session: tests that change it work on a copy.
    """
    from bench_assets.demo.synthetic_results import SyntheticSpec, write_synthetic_warehouse

    data = tmp_path_factory.mktemp("synthetic_results") / "data"
    write_synthetic_warehouse(data, SyntheticSpec(models=3, prompts=6, images_per_prompt=2))
    return data


# One real small benchmark run shared by the arena tests (built once, on first use).
from bench_assets_tests.arena.small_run import arena_run  # noqa: E402,F401
