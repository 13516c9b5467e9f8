"""`bench run`'s summary carries the root cause of a failure, and other models still run."""

from __future__ import annotations

import json
import os

from bench_assets.cli import main


def test_a_failed_partition_says_why_in_one_line(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for path in (data_dir / "models").rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))
    (data_dir / "images").mkdir()
    (data_dir / "images" / "tiny-a").write_text("not a folder")  # every write under it fails
    assert main(["run"]) == 1  # a failed model run is the command's status
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "tiny-a [object, colour]" in failed[0]
    assert "Error occurred while executing" not in out
    assert "images/tiny-a" in failed[0] and ("Errno" in failed[0] or "Error" in failed[0]), failed[0]
    assert "ok      tiny-b [object, colour]" in out, "the other model ran"
    runs_part = out.split("leaderboard (")[0]
    assert len(runs_part.splitlines()) < 10, "a few lines per failure, not sixty"


def test_a_lost_result_store_stops_the_run_and_refreshes_nothing(tmp_path, monkeypatch):
    """After a failed model run the store is asked; gone, no other model and no refresh is attempted."""
    import dagster as dg

    from bench_assets.definitions import build_definitions
    from bench_assets.defs.headless import run_headless
    from bench_assets_tests.conftest import TEST_PROMPTS

    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "prompts").mkdir()
    (data / "prompts" / "default.jsonl").write_text(json.dumps(TEST_PROMPTS[0]) + "\n")
    for name in ("a-empty", "b-empty", "c-empty"):
        (data / "models" / f"{name}.safetensors").write_bytes(b"")  # each run fails at once
        os.utime(data / "models" / f"{name}.safetensors", (1_600_000_000, 1_600_000_000))
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    asked = []

    def store_gone() -> str:
        asked.append(True)
        return "s3://bucket/results: not writable (connection refused)"

    with dg.instance_for_test() as instance:
        summary = run_headless(build_definitions(), instance, log=lambda _: None, storage_problem=store_gone)
        runs = instance.get_runs()
    assert len(summary.failed) == 1 and len(asked) == 1, "stopped after the first failed model"
    assert summary.storage_lost and "connection refused" in summary.storage_lost
    assert not summary.leaderboard_ok and not summary.report_ok
    assert [r.job_name for r in runs] == ["benchmark"], "no leaderboard or report refresh was attempted"
