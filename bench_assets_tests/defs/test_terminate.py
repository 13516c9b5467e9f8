"""Terminating a run from the UI (and force-terminating it) frees its GPU pool slot.

``bench run`` runs in a real subprocess against a real instance with the
project's ``dagster.yaml`` (one ``gpu`` slot). The test does to the run what
the UI does: Terminate marks it CANCELING and interrupts its process;
Force-terminate only marks it CANCELED.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from bench_assets_tests.conftest import TEST_PROMPTS, TEST_SETTINGS
from test_model_sensor import _age

REPO = Path(__file__).resolve().parents[2]
SLOW = {**TEST_SETTINGS, "images_per_prompt": 6, "batch_size": 1, "steps": 4}


def _object_prompts_only(data_dir: Path) -> None:
    """One category is enough to be caught mid-run, and halves each run's work (the suite's time budget)."""
    rows = [row for row in TEST_PROMPTS if row["category"] == "object"]
    (data_dir / "prompts" / "default.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def home(data_dir, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.rmtree(data_dir / "models" / "tiny-b.safetensors", ignore_errors=True)
    (data_dir / "models" / "tiny-b.safetensors").unlink(missing_ok=True)
    (data_dir / "models" / "tiny-b.settings.yaml").unlink(missing_ok=True)
    (data_dir / "models" / "tiny-a.settings.yaml").write_text(yaml.safe_dump(SLOW))
    _object_prompts_only(data_dir)
    for entry in (data_dir / "models").iterdir():
        _age(entry)
    return home


def _start_bench_run(data_dir: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCH_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "bench_assets.cli", "run"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 240.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"bench run exited ({proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _running_run(instance: dg.DagsterInstance):
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="benchmark", statuses=[dg.DagsterRunStatus.STARTED]))
    return runs[0] if runs else None


def _claimed(instance: dg.DagsterInstance) -> list:
    return list(instance.event_log_storage.get_concurrency_info("gpu").claimed_slots)


def _first_png(data_dir: Path):
    folder = data_dir / "images" / "tiny-a" / "object"
    return folder.is_dir() and any(folder.glob("*.png"))


def _pngs(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (data_dir / "images" / "tiny-a" / "object").glob("*.png")}


def test_killed_and_force_terminated_runs_never_block_the_next(data_dir, home):
    instance = dg.DagsterInstance.get()

    # 1. `kill -9` of `bench run` mid-generation: its run stays STARTED, holding the only gpu slot.
    proc = _start_bench_run(data_dir, home)
    try:
        _wait_for(lambda: _first_png(data_dir), "the first image", proc)
        killed = _wait_for(lambda: _running_run(instance), "a STARTED run", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED
    assert _claimed(instance), "the dead run still holds the slot"
    survivors = _pngs(data_dir)

    # 1b. `bench status` (what a user runs first) finds the dead run, marks it failed and frees its slot.
    from bench_assets.cli import main

    assert main(["status"]) == 0
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert _claimed(instance) == [], "bench status freed the dead run's slot"

    # 2. The next `bench run` marks it failed, frees the slot and goes on; then the UI force-terminates it
    #    (marks it CANCELED and nothing more): its step's process must end and free the slot.
    proc = _start_bench_run(data_dir, home)
    try:
        second = _wait_for(lambda: (r := _running_run(instance)) and r.run_id != killed.run_id and r,
                           "the second run", proc)
        _wait_for(lambda: len(_pngs(data_dir)) > len(survivors), "a new image", proc)
        instance.report_run_canceled(second)  # what Force-terminate does
        proc.wait(timeout=60)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"marked run {killed.run_id[:8]} failed" not in out, "bench status repaired it already"
    assert "waiting for the 'gpu' pool" not in out, "the dead run's slot was freed before starting"
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert proc.returncode != 0, "the force-terminated step's process ended"
    assert instance.get_run_by_id(second.run_id).status == dg.DagsterRunStatus.CANCELED, "not relabelled a failure"
    assert _claimed(instance) == [], "its slot is free"
    assert not list((data_dir / "images").rglob(".*.tmp")), "whole images only"

    # 3. The next `bench run` finishes on its own: exactly the missing images, nothing retried.
    before = _pngs(data_dir)
    assert main(["run"]) == 0
    after = _pngs(data_dir)
    assert len(after) == 12 and all(after[name] == data for name, data in before.items()), "survivors kept"
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="benchmark"))
    assert len(runs) == 3 and not [r for r in runs if r.parent_run_id], "no retry run"
    assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])), "none left STARTED"
    assert _claimed(instance) == []


def test_two_bench_runs_execute_each_partition_once(data_dir, tmp_path, monkeypatch, capsys):
    """Two `bench run`s over the same new models: the second skips what the first is running, and
    the first skips what the second did meanwhile. (No pool limit here, so they really overlap.)"""
    from bench_assets.cli import main
    from bench_assets.core.paths import DataPaths
    from bench_assets.storage.locks import partition_lock

    home = tmp_path / "home_unlimited"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    _object_prompts_only(data_dir)
    for entry in (data_dir / "models").iterdir():
        _age(entry)
    instance = dg.DagsterInstance.get()
    # The test holds tiny-a/object, so the first process's tiny-a run is caught mid-way, deterministically.
    with partition_lock(DataPaths(data_dir).cache / "partition_locks", "tiny-a", "object"):
        first = _start_bench_run(data_dir, home)
        try:
            _wait_for(lambda: (r := _running_run(instance)) and r.tags.get("bench/model") == "tiny-a",
                      "the first process's tiny-a run", first)
            assert main(["run"]) == 0
            second = capsys.readouterr().out
        except BaseException:
            first.kill()
            raise
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    runs_part = second.split("leaderboard (")[0]
    assert "1 model run(s) to execute" in runs_part and "tiny-a" not in runs_part, "tiny-a is queued/running: left alone"
    assert "ok      tiny-b [object]" in runs_part
    assert "ok      tiny-a [object]" in out
    assert "skip    tiny-b [object]: done by another run meanwhile" in out
    for key in ("object|tiny-a", "object|tiny-b"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("images"), asset_partitions=[key]), limit=10).records
        assert len(records) == 1, f"{key} was executed {len(records)} times"
