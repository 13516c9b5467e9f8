"""`bench run`, `bench status` and `bench leaderboard`, as a terminal user runs them."""

from __future__ import annotations

import io
import os
import re

import pytest

from bench_assets.cli import main

# Tests sharing the session's `demo_warehouse` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("demo_warehouse")


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
    # wrapped to the terminal: each table repeats rank, tier, model and version before its columns
    assert re.search(r"\| rank +\| tier +\| model +\| version +\| composite +\|", out), out
    assert any(re.match(r"\| rank +\| tier +\| model +\| version +\|", line) and "| clip_score " in line
               for line in out.splitlines()), out
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
    tiny_b = (data_dir / "models" / "tiny-b.safetensors").read_bytes()
    for name in ("tiny-b.safetensors", "tiny-b.settings.yaml"):  # tiny-a alone is enough to be "done"
        (data_dir / "models" / name).unlink()
    (data_dir / "models" / "broken.safetensors").write_bytes(b"\x00" * 64)
    assert main(["run"]) == 1, "a failed model run is the command's status"
    capsys.readouterr()
    (data_dir / "models" / "tiny-c.safetensors").write_bytes(tiny_b)
    assert main(["status"]) == 0
    rows = {tuple(l.split()[:3]) for l in capsys.readouterr().out.splitlines()[2:]}
    assert ("broken", "object", "failed") in rows
    assert ("tiny-c", "object", "missing") in rows
    assert ("tiny-a", "object", "done") in rows


@pytest.mark.parametrize("command", ["status", "run"])
def test_malformed_suite_is_one_line_without_traceback(data_dir, home, capsys, command):
    suite = data_dir / "prompts" / "default.jsonl"
    suite.write_text(suite.read_text().replace('"category": "colour"', '"category": "colour" "x"', 1))
    assert main([command]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.out + captured.err
    assert captured.err.startswith(f"error: {suite}:3: invalid JSON (Expecting ',' delimiter, column 38)")


def test_verbose_shows_the_traceback(data_dir, home):
    from bench_assets.prompts.prompt import PromptSuiteError

    (data_dir / "prompts" / "default.jsonl").write_bytes(b'{"id": "caf\xe9"}\n')
    with pytest.raises(PromptSuiteError, match="default.jsonl:1: invalid UTF-8"):
        main(["status", "--verbose"])  # raised out of main: Python prints the whole traceback


@pytest.fixture
def warehouse(demo_warehouse, monkeypatch):
    """The session's demo warehouse (conftest), read at a 120-column terminal."""
    monkeypatch.setenv("BENCH_DATA_DIR", str(demo_warehouse))
    monkeypatch.setenv("COLUMNS", "120")
    return demo_warehouse


def _image_files(data) -> int:
    return len(list((data / "images").rglob("*.png")))


def test_unknown_category_names_the_known_ones(warehouse, capsys):
    assert main(["leaderboard", "--category", "objects"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no category 'objects'" in captured.err and "known: all, object" in captured.err


def _cells(text: str) -> set[str]:
    cells = {c.strip() for line in text.splitlines() if line.startswith("|") for c in line.split("|")}
    return {c for c in cells if c and set(c) != {"-"}}


def test_leaderboard_fits_120_columns_and_wide_keeps_one_table(warehouse, capsys):
    assert main(["leaderboard"]) == 0
    narrow = capsys.readouterr().out
    assert main(["leaderboard", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert max(map(len, narrow.splitlines())) <= 120 < max(map(len, wide.splitlines()))
    assert _cells(narrow) == _cells(wide), "wrapping moves cells, it never drops one"
    assert narrow.count("| rank ") > 1 and wide.count("| rank ") == 1, "key columns repeat in each group"


def test_cost_names_the_device_and_prices_cpu_seconds_only_when_asked(warehouse, capsys):
    assert main(["cost"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("  tiny-a:")]
    assert f"{_image_files(warehouse)} images on cpu" in line and "$" not in line
    assert "note: not priced: tiny-a" in out and "--price-non-gpu" in out
    assert main(["cost", "--price-non-gpu"]) == 0
    out = capsys.readouterr().out
    assert "per 1,000 images (NOT a GPU)" in out and "note: --price-non-gpu" in out


def test_cost_prices_gpu_seconds(tmp_path, monkeypatch, capsys):
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets.storage.warehouse import Warehouse

    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    rows = [{"model": "big", "category": "object", "prompt_id": f"p{k}", "image_index": 0, "gpu_seconds": 3.6,
             "device": "cuda:1"} for k in range(4)]
    Warehouse(tmp_path / "warehouse").write_partition(IMAGES_TABLE, "big", "object", rows)
    assert main(["cost", "--price-per-hour", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "big: 4 images on cuda:1, 3.600 s generating" in out and "$1.00 per 1,000 images" in out
    assert "note" not in out
    monkeypatch.setenv("BENCH_GPU_PRICE_PER_HOUR", "2.0")  # the flag > this variable > the H100 list price
    assert main(["cost"]) == 0 and "$2.00 per 1,000 images" in capsys.readouterr().out
    assert main(["cost", "--price-per-hour", "1.0"]) == 0 and "$1.00 per 1,000" in capsys.readouterr().out
    monkeypatch.setenv("BENCH_GPU_PRICE_PER_HOUR", "two dollars")
    assert main(["cost"]) == 2
    assert capsys.readouterr().err == "error: BENCH_GPU_PRICE_PER_HOUR must be a price in dollars per hour, got 'two dollars'\n"


def test_sql_runs_queries_read_only_and_the_prompt_goes_on_after_an_error(warehouse, capsys, monkeypatch):
    assert main(["sql", "-c", "select count(*) as n from images; select 7 as seven"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"│\s+n\s+│", out) and re.search(rf"│\s+{_image_files(warehouse)}\s+│", out) and re.search(r"│\s+7\s+│", out)
    assert main(["sql", "-c", "create table mine as select 1"]) == 2
    assert "read-only" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("selec 1;\nselect count(*) as n\n  from images;\n"))
    assert main(["sql"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("error: Parser Error") and re.search(rf"│\s+{_image_files(warehouse)}\s+│", captured.out)


def test_sql_without_a_warehouse_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    assert main(["sql", "-c", "select 1"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'bench.duckdb'} does not exist yet: run `bench run` (or `make demo`) first\n"


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
