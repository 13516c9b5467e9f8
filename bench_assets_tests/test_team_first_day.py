"""A team's first day: the deployment page followed literally, and the services it names failing one line at a time.

Against the real servers the suite starts: PostgreSQL from Debian's
``postgresql`` (``postgres_server``) and moto's S3 server in its own process.
Output is captured at the file-descriptor level (``capfd``): what a terminal
would show, Dagster's own logger included.
"""

from __future__ import annotations

import os
import re
import shlex
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from bench_assets.cli import main
from bench_assets_tests.conftest import REPO
from bench_assets_tests.postgres_server import HOST, SUPERUSER
from bench_assets_tests.s3_server import DUMMY_CREDENTIALS, make_bucket, start_s3_server

s3_server_process = contextmanager(start_s3_server)  # its own moto process, stopped when the block ends

TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Stack Trace:", 'File "')
KEY, SECRET = "AKIAFIRSTDAYKEY", "sEcReT-first-day-42"


def _run(argv: list[str], capfd) -> tuple[int, list[str]]:
    code = main(argv)
    out, err = capfd.readouterr()
    text = out + err
    assert not [m for m in TRACEBACK_MARKERS if m in text], text[-3000:]
    return code, [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def team(data_dir, tmp_path, monkeypatch):
    """The test's data dir with its own instance folder and no AWS or PostgreSQL settings inherited."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("BENCH_STORAGE_ROOT", "AWS_ENDPOINT_URL", "BENCH_INSTANCE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    for path in (data_dir / "models").rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))  # copied long ago: no settling wait
    return data_dir


def _secret_free(root: Path) -> None:
    """No file the commands wrote (logs, Parquet, the DuckDB catalog, the instance) holds the key or the secret.

    ``config.yaml`` aside: the user wrote them there, which is what the commands refused.
    """
    for path in root.rglob("*"):
        if path.is_file() and path.name != "config.yaml" and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            assert KEY.encode() not in data and SECRET.encode() not in data, path


@pytest.mark.parametrize("where", ["BENCH_STORAGE_ROOT", "storage: root", "storage: endpoint_url"])
def test_credentials_in_a_storage_url_are_refused_in_one_line(team, tmp_path, monkeypatch, capfd, where):
    url = f"s3://{KEY}:{SECRET}@team-bench/results"
    config = yaml.safe_load((team / "config.yaml").read_text())
    if where == "BENCH_STORAGE_ROOT":
        monkeypatch.setenv("BENCH_STORAGE_ROOT", url)
    elif where == "storage: root":
        config["storage"] = {"root": url}
    else:
        config["storage"] = {"root": "s3://team-bench/results", "endpoint_url": f"http://{KEY}:{SECRET}@127.0.0.1:1"}
    (team / "config.yaml").write_text(yaml.safe_dump(config))
    commands = [["leaderboard"], ["status"], ["sql", "-c", "select 1"], ["report"], ["doctor"]]
    if where == "BENCH_STORAGE_ROOT":
        commands.append(["run"])  # the costliest: once
    for argv in commands:
        code, lines = _run(argv, capfd)
        assert code != 0, argv
        said = [line for line in lines if "holds credentials" in line]
        assert len(said) == 1 and where in said[0], (argv, lines)
        assert argv == ["doctor"] or len(lines) == 1 + ("warning" in lines[0]), (argv, lines)
    _secret_free(team)
    _secret_free(tmp_path / "dagster_home")


def test_a_wrong_database_password_is_one_line(team, postgres_server, monkeypatch, capfd):
    database = postgres_server.create_database("first_day_wrong_password")
    for name, value in postgres_server.env(database, password="not-the-password").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BENCH_INSTANCE", "postgres")
    assert main(["instance-config", "--template", str(REPO / "dagster.yaml")]) == 0
    capfd.readouterr()
    for argv in (["run"], ["status"], ["leaderboard"]):
        code, lines = _run(argv, capfd)
        about = [line for line in lines if "refused the password" in line]
        if argv == ["leaderboard"]:  # reads the warehouse only: no instance needed, and it says so in one line
            assert len(lines) == 1 and not about, lines
            continue
        assert len(about) == 1 and "DAGSTER_PG_PASSWORD" in about[0] and "not-the-password" not in about[0]
        if argv == ["run"]:
            assert code != 0 and len(lines) == 1, lines
        else:
            assert about[0].startswith("warning: could not read run state"), lines


def test_a_stopped_object_store_is_one_line(team, monkeypatch, capfd):
    import polars as pl

    from bench_assets.core.paths import DataPaths
    from bench_assets.storage.catalog import refresh_views
    from bench_assets.storage.warehouse import open_warehouse

    monkeypatch.setenv("BENCH_STORAGE_ROOT", "s3://team-bench/results")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with s3_server_process() as server:  # a real server that then stops: its port refuses connections
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        make_bucket(server, "team-bench")
        # A warehouse in the bucket and bench.duckdb's views over it: what a team had before the server stopped.
        warehouse = open_warehouse(DataPaths(team))
        warehouse.write_table("leaderboard", pl.DataFrame({"model": ["tiny-a"], "category": ["all"], "rank": [1]}))
        refresh_views(DataPaths(team).duckdb, warehouse)
    for argv in (["run"], ["status"], ["leaderboard"]):
        code, lines = _run(argv, capfd)
        about = [line for line in lines if "s3://team-bench/results" in line]
        assert code != 0 and len(about) == 1 and "BENCH_STORAGE_ROOT" in about[0], (argv, lines)
        assert "bench doctor" in about[0]
        own = [line for line in lines if " - dagster - INFO - " not in line]  # the sensor's "new model" lines aside
        assert len(own) <= 2, (argv, lines)  # the line, and for `run` at most what it did before it stopped


def _blocks_after(page: str, marker: str, count: int) -> list[str]:
    text = page[page.index(marker):]
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)[:count]


def test_the_deployment_page_followed_literally_passes_doctor(team, postgres_server, monkeypatch, capfd):
    """docs/team-deployment.md's block "without compose", step by step, against the real servers."""
    import psycopg2

    page = (REPO / "docs" / "team-deployment.md").read_text()
    once, every_process = _blocks_after(page, "Without compose", 2)
    # Once: the role, the database and the bucket, as the page's psql and aws lines create them.
    statements = re.findall(r'-c "([^"]+)"', once)
    assert [s.split()[:2] for s in statements] == [["CREATE", "ROLE"], ["CREATE", "DATABASE"]]
    connection = psycopg2.connect(host=HOST, port=postgres_server.port, user=SUPERUSER,
                                  password=postgres_server.password, dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS dagster")
        cursor.execute("DROP ROLE IF EXISTS dagster")
        for statement in statements:
            cursor.execute(statement)
    connection.close()
    bucket = re.search(r"aws s3 mb s3://([\w-]+)", once).group(1)
    # Every process: the variables the page exports, with this machine's servers where the page has examples.
    exported = {}
    for line in every_process.splitlines():
        if line.startswith("export "):
            exported.update(dict(word.split("=", 1) for word in shlex.split(line.split("#")[0])[1:]))
    assert set(exported) >= {"BENCH_INSTANCE", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME",
                             "DAGSTER_PG_DB", "DAGSTER_PG_PASSWORD", "BENCH_STORAGE_ROOT", "AWS_ACCESS_KEY_ID",
                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "DAGSTER_HOME"}
    with s3_server_process() as server:
        make_bucket(server, bucket)
        machine = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres_server.port),
                   **DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint,
                   "DAGSTER_HOME": str(team.parent / "dagster_home")}
        for name, value in exported.items():
            monkeypatch.setenv(name, machine.get(name, value))
        commands = [shlex.split(line.split("#")[0]) for line in every_process.splitlines() if line.startswith("bench ")]
        assert commands == [["bench", "instance-config", "--template", "dagster.yaml"], ["bench", "doctor"]]
        monkeypatch.chdir(REPO)  # "from the repository's folder"
        assert main(commands[0][1:]) == 0
        assert "PostgreSQL" in capfd.readouterr().out
        code, lines = _run(commands[1][1:], capfd)
    assert code == 0, lines
    assert [line.split()[:2] for line in lines] == [["ok", "instance"], ["ok", "storage"], ["ok", "compute"],
                                                   ["ok", "credentials"]]
    sample = re.search(r"On a new database `bench doctor` prints:\n\n```\n(.*?)```", page, flags=re.S).group(1)
    expected = sample.splitlines()[:2]
    expected[0] = expected[0].replace("db.internal:5432", f"127.0.0.1:{postgres_server.port}")
    assert lines[:2] == expected, "the page shows what a new database prints"
