"""Acceptance: a team's Dagster instance on a real PostgreSQL server (started by the test harness).

What one process writes (the sensor's registrations and cursor, a run, the materialization of two
partitions) is what a second process opening the same instance sees: the webserver, the daemon and
the code server of a team deployment are such separate processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg

from bench_assets.core.config import BenchConfig
from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.doctor import check_instance
from bench_assets.defs.headless import CURSOR_KEY, tick_model_sensor
from bench_assets.defs.instance_config import write_instance_config
from bench_assets_tests.conftest import REPO, make_data_dir

# The second process: opens the instance from DAGSTER_HOME and reports what it finds (argv[1]: the cursor's key).
READER = """
import json, sys, dagster as dg
CURSOR_KEY = sys.argv[1]
instance = dg.DagsterInstance.get()
print(json.dumps({
    "storages": [type(s).__name__
                 for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)],
    "runs": [[r.run_id, r.status.value, r.tags.get("bench/model")] for r in instance.get_runs()],
    "cursor": instance.run_storage.get_cursor_values({CURSOR_KEY}).get(CURSOR_KEY),
    "images": sorted(instance.get_materialized_partitions(dg.AssetKey("images"))),
    "models": sorted(instance.get_dynamic_partitions("model")),
}))
instance.dispose()
"""


def test_runs_cursor_and_two_partitions_are_in_postgres_for_a_second_process(
        postgres_server, tiny_sources, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path, tiny_sources, models=("tiny-a",))
    for path in (data / "models").rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))  # copied long ago: the sensor registers it at once
    env = postgres_server.env(postgres_server.create_database("acceptance"))
    for name, value in {**env, "BENCH_DATA_DIR": str(data)}.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    config_file, _pool = write_instance_config(REPO / "dagster.yaml", home, BenchConfig(), kind="postgres")
    assert postgres_server.password not in config_file.read_text()

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        defs = build_definitions(DataPaths(data))
        requests, settling = tick_model_sensor(defs, instance)
        assert not settling and [r.tags["bench/model"] for r in requests] == ["tiny-a"], "one run for the model"
        result = defs.resolve_job_def("benchmark").execute_in_process(
            instance=instance, tags=requests[0].tags, asset_selection=[dg.AssetKey("images")])
        assert result.success
        cursor = instance.run_storage.get_cursor_values({CURSOR_KEY})[CURSOR_KEY]
    finally:
        instance.dispose()
    assert not list(home.rglob("*.db")), "no SQLite file: the instance lives in PostgreSQL"

    reader = subprocess.run([sys.executable, "-c", READER, CURSOR_KEY], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DAGSTER_HOME": str(home)})
    assert reader.returncode == 0, reader.stderr
    seen = json.loads(reader.stdout.strip().splitlines()[-1])
    assert seen["storages"] == ["PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
    assert seen["runs"] == [[result.run_id, "SUCCESS", "tiny-a"]]
    assert seen["cursor"] == cursor and "tiny-a" in cursor
    assert seen["images"] == ["colour|tiny-a", "object|tiny-a"], "both categories, from one run"
    assert seen["models"] == ["tiny-a"]
    instance_line = check_instance(home).line()
    assert instance_line.endswith("/acceptance (runs, event log, schedules)"), "`bench doctor` sees Dagster's tables"
