"""`bench run`'s summary carries the root cause of a failure, and other models still run."""

from __future__ import annotations

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
