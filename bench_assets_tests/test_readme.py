"""What the README promises, a test runs: every ```sql query and every `bench ...` command in README.md.

A demo-sized warehouse (conftest's ``demo_warehouse``: a tiny model, one category, built once per
session by `bench run` in-process) answers every SQL query through the connection `bench sql` uses,
and every read-only `bench` command through the CLI's main(). Commands that write, need the network,
a GPU or Modal are listed below with the reason they are not executed; for those the test still
checks that the subcommand exists and that each flag the README shows is one it accepts. A command
added to the README later is picked up automatically and must be classified here.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from bench_assets.cli import main
from bench_assets.core.paths import DataPaths
from bench_assets.storage.query import open_sql, run_statements

# Tests sharing the session's `demo_warehouse` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("demo_warehouse")

README = Path(__file__).resolve().parents[1] / "README.md"

# Executed against the demo warehouse: they only read it.
READ_ONLY = {"leaderboard", "status", "cost", "sql"}
# Checked (subcommand exists, flags accepted) but not executed, and why.
NOT_EXECUTED = {
    "run": "writes: materializes partitions (the module fixture is itself a `bench run`)",
    "demo": "writes: builds demo models and runs everything (what `make demo` does)",
    "download": "needs the network (tested against a local server in core/test_download.py)",
    "import-prompts": "needs a published prompt file the user downloaded; writes data/prompts/",
    "suite": "writes data/prompts/<name>.suite.yaml from suites this warehouse does not have",
    "instance-config": "writes $DAGSTER_HOME/dagster.yaml",
    "doctor": "checks this machine's instance, GPUs and tokens (exit 1 where one is missing): tested in test_doctor.py",
    "report": "writes data/report/ (and --serve serves until stopped)",
    "export": "writes files into --out",
    "prune": "deletes images and rows",
    "migrate": "rewrites rows (tested on a warehouse of absolute paths in storage/test_migrate.py)",
    "arena": "serves a web app until stopped (tested in bench_assets_tests/arena/)",
    "compare": "names the reader's own models (my-model@1); the demo warehouse has one version of one model",
    "gate": "names the reader's own models (my-model@1); the demo warehouse has one version of one model",
}
# Tables a `bench run` without votes does not make: their queries are parsed (syntax), not executed.
TABLES_THE_DEMO_LACKS = {
    "arena_ratings": "exists once the team has voted in `bench arena`",
    "arena_votes": "exists once the team has voted in `bench arena`",
    "metric_agreement": "exists once the team has voted in `bench arena`",
}
# Every read-only command's output fits a 120-column terminal (`bench status` wraps its rows too).
WIDTH_NOT_YET_FITTED: set[str] = set()


def sql_blocks(text: str) -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```", text, flags=re.S | re.M)


def _bench_argv(line: str) -> list[str] | None:
    """argv of a `bench ...` command line (env assignments before it dropped), else None."""
    try:
        words = shlex.split(line.replace("<64 hex digits>", "HEX"), comments=True)
    except ValueError:
        return None
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    return words[1:] if len(words) > 1 and words[0] == "bench" else None


def bench_commands(text: str) -> list[list[str]]:
    """Every `bench ...` in fenced code blocks (line by line) and in inline code spans."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    lines = [line for block in fenced for line in block.splitlines()]
    inline = re.findall(r"`(bench [^`]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    commands = [argv for line in lines + inline if (argv := _bench_argv(line))]
    return list({json.dumps(c): c for c in commands}.values())


@pytest.fixture
def warehouse(demo_warehouse, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(demo_warehouse))
    monkeypatch.setenv("COLUMNS", "120")
    return demo_warehouse


def test_readme_has_queries_and_commands():
    text = README.read_text()
    assert len(sql_blocks(text)) >= 2 and len(bench_commands(text)) >= 10
    assert "duckdb data/bench.duckdb" not in text, "the duckdb CLI may not open the file: show `bench sql`"
    repo = README.parent.resolve()
    for target in re.findall(r"\]\(([^)#\s]+)", text):  # every Markdown link
        if re.match(r"https?://", target):
            continue
        path = (repo / target).resolve()
        assert repo in path.parents and path.exists(), f"README links {target}: not a file in the repository"
    assert "shared/DESIGN.md" not in text, "the architecture page is docs/architecture.md"


def test_every_readme_sql_query_runs(warehouse):
    con = open_sql(DataPaths(warehouse))
    try:
        queries = [q for block in sql_blocks(README.read_text()) for q in block.split(";\n") if q.strip()]
        for query in queries:
            if lacking := [t for t in TABLES_THE_DEMO_LACKS if re.search(rf"\b{t}\b", query)]:
                assert con.extract_statements(query), (query, lacking)  # a syntax error raises here
                continue
            for result in run_statements(con, query):
                assert result.relation is not None, query
                result.relation.fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("argv", bench_commands(README.read_text()), ids=" ".join)
def test_every_readme_bench_command(warehouse, argv, capsys, monkeypatch):
    command = argv[0]
    assert command in READ_ONLY or command in NOT_EXECUTED, (
        f"README shows `bench {' '.join(argv)}`: add {command!r} to READ_ONLY (it is run here) or to "
        "NOT_EXECUTED with the reason")
    with pytest.raises(SystemExit) as help_exit:
        main([command, "--help"])
    assert help_exit.value.code == 0
    usage = capsys.readouterr().out
    for flag in (word.split("=")[0] for word in argv if word.startswith("--")):
        assert flag in usage, f"`bench {' '.join(argv)}`: {flag} is not an option of bench {command}"
    if command in READ_ONLY:
        # `bench sql` without -c is the interactive prompt: a user types a query, then leaves.
        monkeypatch.setattr("sys.stdin", io.StringIO("select model, rank\n  from leaderboard;\n.quit\n"))
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert out.strip()
        if command not in WIDTH_NOT_YET_FITTED:
            assert max(map(len, out.splitlines())) <= 120, f"fits a 120-column terminal:\n{out}"
