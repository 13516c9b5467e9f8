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
    assert "4 partition run(s) succeeded, 0 failed" in out
    assert "| rank | model | clip_score | lpips_diversity |" in out

    assert main(["run"]) == 0  # nothing new, nothing missing
    out = capsys.readouterr().out
    assert "0 partition run(s) to execute" in out

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


@pytest.mark.parametrize("command", ["status", "run"])
def test_malformed_suite_is_one_line_without_traceback(data_dir, home, capsys, command):
    suite = data_dir / "prompts" / "default.jsonl"
    suite.write_text(suite.read_text().replace('"category": "colour"', '"category": "colour" "x"', 1))
    assert main([command]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.out + captured.err
    assert captured.err.startswith(f"error: {suite}:3: invalid JSON (Expecting ',' delimiter, column 38)")


def test_verbose_shows_the_traceback(data_dir, home):
    from bench_assets.core.prompts import PromptSuiteError

    (data_dir / "prompts" / "default.jsonl").write_bytes(b'{"id": "caf\xe9"}\n')
    with pytest.raises(PromptSuiteError, match="default.jsonl:1: invalid UTF-8"):
        main(["status", "--verbose"])  # raised out of main: Python prints the whole traceback
