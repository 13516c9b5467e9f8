"""What the documentation promises, a test runs: every ```sql query and every `bench ...` command in
README.md and in every docs/*.md page.

A demo-sized warehouse (conftest's ``demo_warehouse``: a tiny model, one category, built once per
session by `bench run` in-process) answers every SQL query through the connection `bench sql` uses,
and every read-only `bench` command through the CLI's main(). Commands that write, need the network,
a GPU or Modal are listed below with the reason they are not executed; for those the test still
checks that the subcommand exists and that each flag the page shows is one it accepts. A command
added to a page later is picked up automatically and must be classified here. Every link between
the pages (a file, or a heading's anchor) must lead somewhere, and README.md stays a front page:
short, with a table of contents that links every page.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest

from bench_assets.cli import main
from bench_assets.core.paths import DataPaths
from bench_assets.storage.query import open_sql, run_statements

# Tests sharing the session's `demo_warehouse` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("demo_warehouse")

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250

# Executed against the demo warehouse: they only read it.
READ_ONLY = {"leaderboard", "status", "cost", "sql"}
# Checked (subcommand exists, flags accepted) but not executed, and why.
NOT_EXECUTED = {
    "run": "writes: materializes partitions (the module fixture is itself a `bench run`)",
    "demo": "writes: builds demo models and runs everything (what `make demo` does)",
    "download": "needs the network (tested against a local server in models/test_download.py)",
    "import-prompts": "needs a published prompt file the user downloaded; writes data/prompts/",
    "suite": "writes data/prompts/<name>.suite.yaml from suites this warehouse does not have",
    "references": "`suite NAME` writes data/prompts/NAME.jsonl from a set the demo warehouse lacks (references/ tests)",
    "instance-config": "writes $DAGSTER_HOME/dagster.yaml",
    "doctor": "checks this machine's instance, GPUs and tokens (exit 1 where one is missing): tested in test_doctor.py",
    "report": "writes data/report/ (and --serve serves until stopped)",
    "export": "writes files into --out",
    "prune": "deletes images and rows",
    "migrate": "rewrites rows (tested on a warehouse of absolute paths in storage/test_migrate.py)",
    "arena": "serves a web app until stopped (tested in bench_assets_tests/arena/)",
    "prompts": "serves a web app until stopped (tested in bench_assets_tests/workbench/)",
    "compare": "names the reader's own models (my-model@1); the demo warehouse has one version of one model",
    "gate": "names the reader's own models (my-model@1); the demo warehouse has one version of one model",
}
# Tables a `bench run` without votes does not make: their queries are parsed (syntax), not executed.
TABLES_THE_DEMO_LACKS = {
    "arena_ratings": "exists once the team has voted in `bench arena`",
    "arena_votes": "exists once the team has voted in `bench arena`",
    "metric_agreement": "exists once the team has voted in `bench arena`",
    "distribution_scores": "exists once a reference set is in data/references/ (`make demo` draws one)",
    "distribution_leaderboard": "a view over distribution_scores",
}
# Every read-only command's output fits a 120-column terminal (`bench status` wraps its rows too).
WIDTH_NOT_YET_FITTED: set[str] = set()


def page_name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def without_code(text: str) -> str:
    """The page with its fenced blocks removed (a `# comment` in a block is not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


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
    inline = re.findall(r"`(bench [^`]+)`", without_code(text))
    commands = [argv for line in lines + inline if (argv := _bench_argv(line))]
    return list({json.dumps(c): c for c in commands}.values())


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-'."""
    found, count = set(), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *$", without_code(page.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(f"{slug}-{count[slug]}" if slug in count else slug)  # a repeated heading gets -1, -2 ...
        count[slug] = count.get(slug, 0) + 1
    return found


def _commands_of_every_page() -> list:
    """(page, argv) once per distinct command: the first page that shows it runs it."""
    params, seen = [], set()
    for page in PAGES:
        for argv in bench_commands(page.read_text()):
            if (key := json.dumps(argv)) not in seen:
                seen.add(key)
                params.append(pytest.param(page_name(page), argv, id=f"{page_name(page)}: {' '.join(argv)}"))
    return params


@pytest.fixture
def warehouse(demo_warehouse, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(demo_warehouse))
    monkeypatch.setenv("COLUMNS", "120")
    return demo_warehouse


def test_readme_is_a_front_page_that_links_every_docs_page():
    text = README.read_text()
    assert len(text.splitlines()) < README_MAX_LINES, "README.md is the front page: move detail into docs/"
    assert re.search(r"^## Contents$", text, flags=re.M), "a table of contents"
    linked = {(REPO / target).resolve() for target in re.findall(r"\]\((docs/[^)#\s]+\.md)", text)}
    unlinked = [page_name(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"README.md links no page {unlinked}"
    for command in ("make demo", "make test", "make dev", "bench run", "bench leaderboard"):
        assert command in text, command
    assert sql_blocks(text), "the first benchmark shows one SQL query"
    # The ground rules: the README itself says which numbers mean something only with real weights.
    assert "## Which numbers mean something" in text and "Meaningful numbers need real weights" in text


def sql_queries(text: str) -> list[str]:
    return [query for block in sql_blocks(text) for query in block.split(";\n") if query.strip()]


def test_the_pages_together_show_queries_and_commands():
    assert sum(len(sql_queries(page.read_text())) for page in PAGES) >= 10
    assert len(_commands_of_every_page()) >= 30


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_link_leads_somewhere(page):
    text = page.read_text()
    assert "duckdb data/bench.duckdb" not in text, "the duckdb CLI may not open the file: show `bench sql`"
    assert "shared/DESIGN.md" not in text, "the architecture page is docs/architecture.md"
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(text)):  # every Markdown link and image
        if re.match(r"https?://", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        assert REPO in path.parents and path.exists(), f"{page_name(page)} links {target}: not a file in the repository"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page_name(page)} links {target}: {page_name(path)} has no such heading"


@pytest.mark.parametrize("page", [p for p in PAGES if sql_blocks(p.read_text())], ids=page_name)
def test_every_sql_query_runs(warehouse, page):
    con = open_sql(DataPaths(warehouse))
    try:
        for query in sql_queries(page.read_text()):
            if lacking := [t for t in TABLES_THE_DEMO_LACKS if re.search(rf"\b{t}\b", query)]:
                assert con.extract_statements(query), (query, lacking)  # a syntax error raises here
                continue
            for result in run_statements(con, query):
                assert result.relation is not None, query
                result.relation.fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(("page", "argv"), _commands_of_every_page())
def test_every_bench_command(warehouse, page, argv, capsys, monkeypatch):
    command = argv[0]
    assert command in READ_ONLY or command in NOT_EXECUTED, (
        f"{page} shows `bench {' '.join(argv)}`: add {command!r} to READ_ONLY (it is run here) or to "
        "NOT_EXECUTED with the reason")
    with pytest.raises(SystemExit) as help_exit:
        main([command, "--help"])
    assert help_exit.value.code == 0
    usage = capsys.readouterr().out
    for flag in (word.split("=")[0] for word in argv if word.startswith("--")):
        assert flag in usage, f"{page}: `bench {' '.join(argv)}`: {flag} is not an option of bench {command}"
    if command == "sql" and [t for t in TABLES_THE_DEMO_LACKS if re.search(rf"\b{t}\b", " ".join(argv))]:
        return  # a table this warehouse lacks: the view is queried in storage/test_distribution_board.py
    if command in READ_ONLY:
        # `bench sql` without -c is the interactive prompt: a user types a query, then leaves.
        monkeypatch.setattr("sys.stdin", io.StringIO("select model, rank\n  from leaderboard;\n.quit\n"))
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert out.strip()
        if command not in WIDTH_NOT_YET_FITTED:
            assert max(map(len, out.splitlines())) <= 120, f"fits a 120-column terminal:\n{out}"
