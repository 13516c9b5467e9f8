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
    assert f"report: {(data_dir / 'report' / 'index.html').resolve().as_uri()}" in out  # where make demo ends

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


@pytest.fixture
def finished(synthetic_results, tmp_path, monkeypatch):
    """A copy of a finished benchmark's data dir, as BENCH_DATA_DIR."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synthetic_results, data)
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    return data


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_writes_the_leaderboards_and_every_score_table(finished, tmp_path, capsys, fmt):
    assert main(["export", "--format", fmt, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert f"leaderboard.{fmt}" in files and f"scores_geneval.{fmt}" in files and f"prompts.{fmt}" in files
    assert f"wrote {len(files)} file(s) to" in out


def test_export_of_an_empty_warehouse_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    assert main(["export", "--format", "csv", "--out", str(tmp_path / "out")]) == 1
    assert "nothing to export" in capsys.readouterr().err


def test_report_builds_and_says_where_it_is(finished, capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    index = finished / "report" / "index.html"
    assert index.is_file() and f"open {index.resolve().as_uri()}" in out
    assert "3 model(s), 36 image(s), 36 new thumbnail(s), 0 cached" in out


def test_report_serve_binds_loopback_on_the_port_asked(built_report):
    """`bench report --serve` as a user starts it: a process that serves until stopped."""
    import re
    import subprocess
    import sys
    import urllib.request

    env = {**os.environ, "BENCH_DATA_DIR": str(built_report.data)}
    proc = subprocess.Popen([sys.executable, "-m", "bench_assets.cli", "report", "--serve", "--no-build",
                             "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:(\d+)/report/index\.html)", line)
        assert match, line
        with urllib.request.urlopen(match[1], timeout=10) as response:
            assert response.status == 200 and b"report.js" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_arena_without_images_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_ARENA_TOKEN", "never-printed")
    assert main(["arena", "--port", "0"]) == 1
    captured = capsys.readouterr()
    assert "no pairs to vote on" in captured.err and "bench run" in captured.err
    assert "never-printed" not in captured.out + captured.err
