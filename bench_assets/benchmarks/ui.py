"""``make bench-ui``: one new model through ``dagster dev`` (the daemon path) vs ``bench run``.

Both sides start from the same demo model (built once) in their own data
directory and instance, on this machine:

- in process: ``bench run`` as a subprocess, start to finish (its sensor
  ticks, the model's run, the leaderboard);
- daemon: ``dagster dev`` (webserver + daemon) with an empty drop folder; the
  model is copied in once the daemon is up, and the clock runs from that copy
  until the model's runs have finished and the leaderboard has been
  re-materialized by the ``results_freshness`` automation sensor.

For each side it reports the wall time, the runs, and the real model loads
read from the runs' event logs (``loaded the scorer`` / ``loaded in`` lines):
the target is one load of the pipeline and of each scorer per model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(data / "dagster_home"), "BENCH_DATA_DIR": str(data),
            "PYTHONPATH": str(REPO), "DAGSTER_DISABLE_TELEMETRY": "1"}


def _layout(root: Path, source: Path, with_model: bool) -> Path:
    data = root
    (data / "dagster_home").mkdir(parents=True)
    shutil.copytree(source / "prompts", data / "prompts")
    shutil.copy(source / "config.yaml", data / "config.yaml")
    (data / "models").mkdir()
    if with_model:
        _drop(source, data)
    subprocess.run([sys.executable, "-m", "bench_assets.cli", "instance-config", "--template",
                    str(REPO / "dagster.yaml")], env=_env(data), check=True, capture_output=True)
    return data


def _drop(source: Path, data: Path) -> None:
    for item in (source / "models").iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, data / "models" / item.name)


def _loads(data: Path) -> dict:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="benchmark"))
        messages = [e.message or "" for r in runs for e in instance.all_logs(r.run_id)]
        statuses = [r.status.value for r in runs]
    scorer = sum("loaded the scorer" in m for m in messages)
    pipeline = sum(": generating " in m and "loaded in" in m for m in messages)
    return {"benchmark_runs": len(runs), "statuses": statuses, "scorer_loads": scorer, "pipeline_loads": pipeline}


def in_process(source: Path, root: Path) -> dict:
    data = _layout(root / "inproc", source, with_model=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench_assets.cli", "run"], env=_env(data),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench run failed:\n{done.stdout}\n{done.stderr}")
    return {"path": "bench run (in process)", "seconds": round(seconds, 1), **_loads(data)}


def _leaderboard_after(data: Path, t0: float) -> bool:
    board = data / "warehouse" / "leaderboard" / "leaderboard.parquet"
    return board.is_file() and board.stat().st_mtime > t0


def _runs_finished(data: Path) -> bool:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(data / "dagster_home")) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="benchmark"))
        return bool(runs) and all(r.is_finished for r in runs)


def daemon(source: Path, root: Path, port: int, timeout: float) -> dict:
    data = _layout(root / "daemon", source, with_model=False)
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.Popen([str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
                             "-p", str(port)], cwd=REPO, env=_env(data), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(30)  # webserver, code server and daemon up; the sensors have ticked once
        t0 = time.time()
        _drop(source, data)
        deadline = t0 + timeout
        while time.time() < deadline:
            if _runs_finished(data) and _leaderboard_after(data, t0):
                break
            time.sleep(2)
        else:
            raise SystemExit(f"the daemon path did not finish within {timeout:.0f} s")
        seconds = time.time() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return {"path": "dagster dev (sensor, daemon, automation)", "seconds": round(seconds, 1), **_loads(data)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from bench_assets.core.paths import DataPaths
    from bench_assets.demo.setup import prepare_demo

    # dagster dev's processes may still be flushing when the folder goes: never fail the figures on that.
    with tempfile.TemporaryDirectory(prefix="bench-ui-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        source = root / "source"
        (source / "prompts").mkdir(parents=True)
        shutil.copy(REPO / "data" / "prompts" / "default.jsonl", source / "prompts" / "default.jsonl")
        prepare_demo(DataPaths(source), n_models=1)
        results = [in_process(source, root), daemon(source, root, args.port, args.timeout)]
    print("| path | seconds | benchmark runs | pipeline loads | scorer loads |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['path']} | {r['seconds']} | {r['benchmark_runs']} | {r['pipeline_loads']} | {r['scorer_loads']} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
