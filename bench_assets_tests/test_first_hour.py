"""A newcomer's first hour: the mistakes people make first give one clear line each, never a traceback.

A fresh data folder with one prompt and one zero-byte ``.safetensors`` (the most
common first mistake): ``bench run`` fails that model with a summary naming the
file, and every command that reads the (empty) warehouse says so in one line.
Then one good model among two bad ones: the terminal shows the platform's own
lines only, the stack traces are in ``data/.cache/bench.log``. Output is
captured at the file-descriptor level (``capfd``), where Dagster's own console
logger writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_assets.cli import main
from bench_assets_tests.browser import PageWatch
from bench_assets_tests.conftest import TEST_PROMPTS, add_model

TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Stack Trace:", 'File "')


def _fresh_data(root: Path) -> Path:
    data = root / "data"
    (data / "models").mkdir(parents=True)
    (data / "prompts").mkdir()
    (data / "prompts" / "default.jsonl").write_text(json.dumps(TEST_PROMPTS[0]) + "\n")
    return data


def _age(data: Path) -> None:
    import os

    for path in (data / "models").rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))  # copied long ago: no settling wait


def _no_traceback(text: str) -> None:
    assert not [m for m in TRACEBACK_MARKERS if m in text], text[-3000:]


@pytest.fixture
def fresh(tmp_path, monkeypatch) -> Path:
    data = _fresh_data(tmp_path)
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_PROMPT_SUITE", raising=False)
    return data


def test_one_zero_byte_model_fails_in_one_line_and_nothing_reads_a_traceback(fresh, tmp_path, capfd, browser):
    (fresh / "models" / "first.safetensors").write_bytes(b"")
    _age(fresh)
    code = main(["run"])
    out, err = capfd.readouterr()
    assert code != 0, "a failed model run is the command's status"
    _no_traceback(out + err)
    summary = out.split("model run(s) succeeded")[1]
    assert str(fresh / "models" / "first.safetensors") in summary and "only 0 bytes" in summary
    for argv in (["leaderboard"], ["compare", "first", "other"], ["export", "--format", "csv", "--out",
                 str(tmp_path / "exported")], ["report"]):
        code = main(argv)
        out, err = capfd.readouterr()
        _no_traceback(out + err)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert len(lines) == 1, (argv, lines)
        if argv[0] in ("leaderboard", "report", "export"):
            assert code == 0 and "no model has scores yet" in lines[0], (argv, lines)
        else:
            assert code != 0 and "no results for model" in lines[0], lines
    page = browser.new_context().new_page()
    watch = PageWatch(page)
    page.goto((fresh / "report" / "index.html").resolve().as_uri())
    page.wait_for_load_state("load")
    assert "no model has scores yet" in page.inner_text("body").lower()
    assert watch.console_errors == [] and watch.page_errors == []


def test_bad_models_give_one_line_each_and_their_traces_go_to_the_log(fresh, tiny_sources, capfd):
    add_model(fresh, tiny_sources, "tiny-a")
    (fresh / "prompts" / "default.jsonl").write_text(json.dumps(TEST_PROMPTS[0]) + "\n")
    (fresh / "models" / "empty.safetensors").write_bytes(b"")
    (fresh / "models" / "garbage.safetensors").write_bytes(b"not a safetensors header at all")
    scorers = json.loads((tiny_sources / "scorers.json").read_text())
    (fresh / "config.yaml").write_text(json.dumps({"metrics": scorers}))
    _age(fresh)
    code = main(["run"])
    out, err = capfd.readouterr()
    assert code != 0
    _no_traceback(out + err)
    run_part = (out + err).split("model run(s) succeeded")[0]
    for bad in ("empty", "garbage"):
        assert len([line for line in run_part.splitlines() if bad in line]) <= 1, run_part
    assert "ok      tiny-a [object]" in out and "1 model run(s) succeeded, 2 failed" in out
    log = (fresh / ".cache" / "bench.log").read_text()
    assert "Stack Trace" in log or "Traceback" in log, "the traces are kept in the log file"
    assert str(fresh / ".cache" / "bench.log") in out, "the summary says where to look"
