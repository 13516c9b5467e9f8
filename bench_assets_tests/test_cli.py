"""`bench run`, `bench status` and `bench leaderboard`, as a terminal user runs them."""

from __future__ import annotations

import os

import pytest

from bench_assets.cli import main


@pytest.fixture
def home(data_dir, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    past = 1_600_000_000
    for path in (data_dir / "models").rglob("*"):
        os.utime(path, (past, past))  # copied long ago: no need to wait for them to settle
    return home


def test_run_twice_then_status_and_leaderboard(data_dir, home, capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "2 model run(s) succeeded, 0 failed" in out  # one run per model, both categories
    assert "| rank | tier | model | version | composite | clip_score | lpips_diversity |" in out

    assert main(["run"]) == 0  # nothing new, nothing missing
    out = capsys.readouterr().out
    assert "0 model run(s) to execute" in out

    assert main(["status"]) == 0
    lines = [l.split() for l in capsys.readouterr().out.splitlines()[2:]]
    assert {(l[0], l[1], l[2]) for l in lines} == {
        (m, c, "done") for m in ("tiny-a", "tiny-b") for c in ("object", "colour")
    }

    assert main(["leaderboard", "--category", "colour"]) == 0
    out = capsys.readouterr().out
    assert "tiny-a" in out and "tiny-b" in out and "(n=4)" in out


def test_status_tells_missing_and_failed_apart(data_dir, home, capsys):
    (data_dir / "models" / "broken.safetensors").write_bytes(b"\x00" * 64)
    assert main(["run"]) == 0
    capsys.readouterr()
    (data_dir / "models" / "tiny-c.safetensors").write_bytes(
        (data_dir / "models" / "tiny-b.safetensors").read_bytes()
    )
    assert main(["status"]) == 0
    rows = {tuple(l.split()[:3]) for l in capsys.readouterr().out.splitlines()[2:]}
    assert ("broken", "object", "failed") in rows
    assert ("tiny-c", "object", "missing") in rows
    assert ("tiny-a", "object", "done") in rows


def test_arena_without_images_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_ARENA_TOKEN", "never-printed")
    assert main(["arena", "--port", "0"]) == 1
    captured = capsys.readouterr()
    assert "no pairs to vote on" in captured.err and "bench run" in captured.err
    assert "never-printed" not in captured.out + captured.err
