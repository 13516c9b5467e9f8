"""The Modal backend through Dagster Pipes, with Modal's ``.local()`` calls.

``modal_local_invocation`` makes the step start ``python -m bench_assets.compute.modal_app``
instead of ``modal run``: the same Pipes session, the same entrypoint, the same
GPU function bodies, called with ``.local()`` instead of on an H100.

One real Pipes run (the ``images`` step: one interpreter start) covers the
channel itself: extras out, logs and the result message back, PNGs written
locally. The rest of the Modal path (its cache checks, scoring, score rows
pointing at local files) is checked in this process with the very functions
that run on each side of that channel (``modal_pipes``' request builders and
decoders, ``modal_app.run_request``), the request and the result passed
through JSON as Pipes passes them, and compared with the local backend.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image

from bench_assets.cli import main
from bench_assets.compute.backend import BACKENDS
from bench_assets.compute.modal_pipes import (
    generation_extras,
    generation_report,
    result_message,
    score_outcome,
    scoring_extras,
)
from bench_assets.models.registry import find_model, fingerprint
from bench_assets.core.paths import DataPaths
from bench_assets.prompts.suites import load_suite
from bench_assets.definitions import build_definitions
from bench_assets.defs.partitions import partition_key
from bench_assets.generation.generate import GenerationRequest
from bench_assets.storage.store import open_store
from bench_assets.generation.image_set import read_png_meta
from bench_assets.metrics.base import ImageItem
from bench_assets_tests.defs.dagster_helpers import materialization_metadata, register

IMAGES = [dg.AssetKey("images")]


def _use_compute(data_dir: Path, **compute) -> None:
    config_file = data_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["compute"] = compute
    config_file.write_text(yaml.safe_dump(config))


def _run_images(defs, instance, model="tiny-a", category="object"):
    return defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key(model, category), instance=instance, raise_on_error=False, asset_selection=IMAGES,
    )


def _json(data):
    return json.loads(json.dumps(data))


def _through_the_entrypoint(extras: dict, kind: str) -> tuple[dict, list[str]]:
    """What the Pipes round trip does, in this process: JSON out, the entrypoint's driver, JSON back."""
    from bench_assets.compute.modal_app import run_request

    logs: list[str] = []
    message = _json(run_request(_json(extras), remote=False, log=logs.append))
    return result_message([message], kind), logs


@pytest.fixture
def no_modal_token(tmp_path, monkeypatch):
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-such-modal.toml"))


def test_modal_path_keeps_the_local_contract(data_dir, instance, tmp_path):
    """Images through a real Pipes run; then caching, scores and pixels against the local backend
    (same seeds, same pixels, same scores: which backend made a partition does not show in its files)."""
    _use_compute(data_dir, backend="modal", modal_local_invocation=True)
    paths = DataPaths(data_dir)
    defs = build_definitions(paths)
    register(instance, "tiny-a")

    result = _run_images(defs, instance)
    assert result.success
    images = materialization_metadata(result, "images")
    assert images["backend"] == "modal" and images["generated"] == 4 and images["failed"] == 0
    assert images["gpu_seconds"] > 0
    # The entrypoint's log lines travelled over the Pipes channel into the run's event log.
    assert any("images to make in 1 call(s)" in e.message for e in instance.all_logs(result.run_id))
    manifest = pl.read_parquet(paths.warehouse / "images" / "tiny-a" / "object.parquet")
    assert manifest.height == 4 and (manifest["gpu_seconds"] > 0).all()
    for key in manifest["path"]:  # keys in the image store, the local data dir's images/ by default
        assert key.startswith("tiny-a/object/") and (data_dir / "images" / key).is_file()

    compute = defs.resources["compute"]
    local = BACKENDS["local"].build(compute.settings(), None)
    entry = find_model(paths.models, "tiny-a")
    suite = load_suite(paths.default_suite())
    request = GenerationRequest(entry, fingerprint(entry, paths.cache), "object", tuple(suite.in_category("object")),
                                defs.resources["generation"].settings_for(entry, suite.generation),
                                open_store(paths.images), known=tuple(manifest.iter_rows(named=True)))

    message, _ = _through_the_entrypoint(generation_extras(request, str(data_dir), compute.runtime()), "generation")
    again = generation_report(message)
    assert (again.generated, again.present_before) == (0, 4), "what exists is not made again"

    by_id = suite.by_id()
    items = [ImageItem("tiny-a", "object", by_id[r["prompt_id"]], r["image_index"], r["seed"], r["path"],
                       r["sha256"], open_store(paths.images)) for r in manifest.iter_rows(named=True)]
    options = defs.resources["scorers"].for_metric("clip_score")
    message, logs = _through_the_entrypoint(scoring_extras("clip_score", options, items, [], str(data_dir)), "scores")
    remote = score_outcome(message)
    assert any("clip_score: 4 images to score remotely" in line for line in logs)
    assert remote.computed == 4 and remote.gpu_seconds > 0
    assert sorted(r["image_path"] for r in remote.rows) == sorted(manifest["path"]), "rows point at the local images"
    here = local.score("clip_score", options, items, [])

    def values(rows):
        return {(r["prompt_id"], r["image_index"]): r["value"] for r in rows}

    assert values(remote.rows) == pytest.approx(values(here.rows), abs=1e-6) and len(values(remote.rows)) == 4
    message, _ = _through_the_entrypoint(scoring_extras("clip_score", options, items, remote.rows, str(data_dir)),
                                         "scores")
    assert (score_outcome(message).computed, score_outcome(message).cached) == (0, 4)

    local_dir = tmp_path / "local_images"
    made_here = local.generate(replace(request, images=open_store(local_dir), known=()))
    assert made_here.set_fingerprint == manifest["set_fingerprint"][0]
    remote_dir = data_dir / "images" / "tiny-a" / "object"
    names = sorted(p.name for p in remote_dir.glob("*.png"))
    assert names == sorted(p.name for p in (local_dir / "tiny-a" / "object").glob("*.png")) and len(names) == 4
    for name in names:
        a = np.asarray(Image.open(remote_dir / name), dtype=np.int16)
        b = np.asarray(Image.open(local_dir / "tiny-a" / "object" / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, name
        assert read_png_meta(remote_dir / name)["set_fingerprint"] == made_here.set_fingerprint


def test_modal_without_a_token_fails_the_step_before_any_work(data_dir, instance, no_modal_token):
    _use_compute(data_dir, backend="modal")
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")
    result = _run_images(defs, instance)
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "modal setup" in failure.step_failure_data.error.message
    assert not (data_dir / "images").exists()
    assert not (DataPaths(data_dir).warehouse / "images").exists()


@pytest.mark.parametrize("chosen_by", ["BENCH_COMPUTE", "config.yaml"])
def test_bench_with_modal_and_no_token_stops_before_writing_anything(tmp_path, monkeypatch, capsys, no_modal_token,
                                                                    chosen_by):
    """The CLI's preflight reads the backend where the resource does: the variable, else the file."""
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    if chosen_by == "BENCH_COMPUTE":
        monkeypatch.setenv("BENCH_COMPUTE", "modal")
    else:
        monkeypatch.delenv("BENCH_COMPUTE", raising=False)
        (data / "config.yaml").write_text("compute: {backend: modal}\n")
    assert main(["demo" if chosen_by == "BENCH_COMPUTE" else "run"]) == 3
    err = capsys.readouterr().err
    assert "no Modal token" in err and "modal setup" in err
    written_by_the_test = {"models"} | ({"config.yaml"} if chosen_by == "config.yaml" else set())
    assert {p.name for p in data.rglob("*")} == written_by_the_test, "no models, images or tables"
    assert not (tmp_path / "home").exists()


def test_compute_backend_comes_from_the_environment_then_the_file(data_dir, monkeypatch):
    from bench_assets.core.config import ConfigError

    _use_compute(data_dir, backend="modal")
    monkeypatch.delenv("BENCH_COMPUTE", raising=False)
    assert build_definitions(DataPaths(data_dir)).resources["compute"].backend == "modal"
    monkeypatch.setenv("BENCH_COMPUTE", "local")
    assert build_definitions(DataPaths(data_dir)).resources["compute"].backend == "local"
    monkeypatch.setenv("BENCH_COMPUTE", "aws")
    with pytest.raises(ConfigError, match="BENCH_COMPUTE.*'aws'"):
        build_definitions(DataPaths(data_dir))
    monkeypatch.delenv("BENCH_COMPUTE")
    _use_compute(data_dir, backend="slurm")
    with pytest.raises(ConfigError, match=r"config.yaml: compute backend 'slurm' is not one of \('local', 'modal'\)"):
        build_definitions(DataPaths(data_dir))


def test_makefile_token_check_runs_without_site_packages(tmp_path, no_modal_token):
    """`make demo` runs it before installing anything: the standard library must be enough (no PyYAML)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(repo), "BENCH_COMPUTE": "modal",
           "MODAL_CONFIG_PATH": str(tmp_path / "no-such-modal.toml"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-S", "-m", "bench_assets.compute.modal_auth"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "modal setup" in done.stderr, done.stderr
