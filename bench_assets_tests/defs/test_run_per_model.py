"""One run per model: its steps in one process, each model loaded once, the
leaderboard refreshed by automation, and nothing requested twice."""

from __future__ import annotations

import os
import time

import dagster as dg

from bench_assets.compute.worker_cache import load_counts, worker_cache
from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.active_runs import model_run_request
from bench_assets.metrics.registry import METRICS
from dagster_helpers import query, register, requested_partitions
from test_model_sensor import Ticker, _age

CATEGORIES = ["object", "colour"]


def _defs(data_dir):
    return build_definitions(DataPaths(data_dir))


def _step_pids(result: dg.ExecuteInProcessResult) -> set[int]:
    return {e.pid for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}


def test_a_models_two_categories_run_in_one_process_with_one_load_each(data_dir, instance):
    defs = _defs(data_dir)
    register(instance, "tiny-a")
    request = model_run_request("tiny-a", CATEGORIES, CATEGORIES, run_key=None, reason="test")
    worker_cache().clear()  # an earlier test in this worker may have left the same tiny models loaded
    load_counts.clear()
    result = defs.resolve_job_def("benchmark").execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False
    )
    assert result.success
    starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert len(starts) == 1 + len(METRICS), "images + every metric"
    assert _step_pids(result) == {os.getpid()}, "every step in the run's own process"
    # Both categories were materialized by this one run, for every asset.
    for asset in ("images", "clip_score", "dino"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {"object|tiny-a", "colour|tiny-a"}
    assert load_counts["pipeline:tiny-a"] == 1
    scorers = {k: v for k, v in load_counts.items() if not k.startswith("pipeline:")}
    assert scorers and set(scorers.values()) == {1}, f"each scorer loads once for two categories: {scorers}"
    rows = defs.resources["bench"].warehouse.read_table("scores_clip")
    assert sorted(set(rows["category"])) == sorted(CATEGORIES)


def test_sensor_runs_then_the_leaderboard_refreshes_itself(data_dir, instance):
    """What the daemon does: the sensor's runs, then the freshness sensor's evaluation, no manual step."""
    for entry in (data_dir / "models").iterdir():
        _age(entry)
    defs = _defs(data_dir)
    freshness = defs.resolve_sensor_def("results_freshness")
    assert freshness.default_status == dg.DefaultSensorStatus.RUNNING, "on without anyone starting it"
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the daemon ticks all along
    assert baseline.get_num_requested(dg.AssetKey("leaderboard")) == 0
    ticker = Ticker(defs, instance)
    requests = ticker.tick().run_requests
    assert [r.tags["bench/model"] for r in requests] == ["tiny-a", "tiny-b"]
    job = defs.resolve_job_def("benchmark")
    for request in requests:
        assert job.execute_in_process(instance=instance, tags=request.tags,
                                      partition_key=request.partition_key).success
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    leaderboard = dg.AssetKey("leaderboard")
    assert evaluation.get_num_requested(leaderboard) == 1, "the finished runs make the leaderboard due"
    assert defs.resolve_job_def("refresh_leaderboard").execute_in_process(instance=instance).success
    models = {r[0] for r in query(data_dir, "select distinct model from leaderboard")}
    assert models == {"tiny-a", "tiny-b"}
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert again.get_num_requested(leaderboard) == 0, "and only once"


def _code_location_origin():
    """Where the daemon would load the job from: queued runs must name it."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="bench_assets.definitions"))
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), "benchmark")


def test_the_schedule_skips_partitions_whose_runs_are_queued(data_dir, instance):
    from test_nightly_schedule import _evaluate

    defs = _defs(data_dir)
    register(instance, "tiny-a", "tiny-b")
    queued = model_run_request("tiny-a", CATEGORIES, CATEGORIES, run_key=None, reason="new")
    # What the QueuedRunCoordinator holds while earlier runs use the GPU.
    run = instance.add_run(dg.DagsterRun(job_name="benchmark", tags=queued.tags, status=dg.DagsterRunStatus.QUEUED,
                                         remote_job_origin=_code_location_origin()))
    assert _evaluate(defs, instance) == ["colour|tiny-b", "object|tiny-b"], "tiny-a's run is queued already"
    instance.report_run_canceled(run)
    assert _evaluate(defs, instance) == ["colour|tiny-a", "colour|tiny-b", "object|tiny-a", "object|tiny-b"]

    ticker = Ticker(defs, instance)
    for entry in (data_dir / "models").iterdir():
        _age(entry)
    instance.add_run(dg.DagsterRun(job_name="benchmark", tags=queued.tags, status=dg.DagsterRunStatus.STARTED))
    first = ticker.tick().run_requests
    assert requested_partitions(first) == ["colour|tiny-b", "object|tiny-b"], "the sensor skips it too"
