"""`bench instance-config` chooses the instance's database: SQLite by default, PostgreSQL from the environment."""

from __future__ import annotations

import pytest
import yaml

from bench_assets.cli import main
from bench_assets.core.instance_settings import InstanceSettingsError, postgres_db_section, resolve_postgres
from bench_assets_tests.conftest import REPO


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("BENCH_GPUS", "2")
    monkeypatch.delenv("BENCH_COMPUTE", raising=False)
    return tmp_path / "dagster_home"


def _render(capsys) -> tuple[int, str]:
    code = main(["instance-config", "--template", str(REPO / "dagster.yaml")])
    return code, capsys.readouterr().err


def test_postgres_is_chosen_by_environment_and_the_file_names_variables_not_values(home, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "s3cret-value-41")
    monkeypatch.setenv("BENCH_INSTANCE", "postgres")
    assert _render(capsys)[0] == 0
    text = (home / "dagster.yaml").read_text()
    assert "s3cret-value-41" not in text
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"] == {
        "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"}, "scheme": "postgresql+psycopg2"}
    assert config["concurrency"]["pools"]["default_limit"] == 2, "sized as on SQLite: one template"
    assert config["run_monitoring"]["enabled"] is True

    monkeypatch.delenv("BENCH_INSTANCE")
    assert _render(capsys)[0] == 0
    assert "storage" not in yaml.safe_load((home / "dagster.yaml").read_text()), "the default stays SQLite"

    monkeypatch.setenv("BENCH_INSTANCE", "postgress")
    code, err = _render(capsys)
    assert code == 2 and err.strip() == "error: BENCH_INSTANCE='postgress' is not one of sqlite, postgres"


def test_hand_written_postgres_settings_a_password_in_the_file_is_refused_without_showing_it():
    section = {"hostname": "db", "port": 5432, "username": "u", "password": "in-the-file-77", "db_name": "d"}
    with pytest.raises(InstanceSettingsError, match="password is written in the file") as error:
        resolve_postgres(section, "dagster.yaml", environ={})
    assert "in-the-file-77" not in str(error.value)
    literal = {**section, "password": {"env": "PG_PASS"}}
    settings = resolve_postgres(literal, "dagster.yaml", environ={"PG_PASS": "from-env-12"})
    assert (settings.where(), settings.password) == ("db:5432/d", "from-env-12")
    assert "from-env-12" not in repr(settings)
    no_port = {key: value for key, value in literal.items() if key != "port"}
    assert resolve_postgres(no_port, "dagster.yaml", environ={"PG_PASS": "x"}).port == 5432, "Dagster's default"
    with pytest.raises(InstanceSettingsError, match="no hostname; use `hostname: {env: DAGSTER_PG_HOST}`"):
        resolve_postgres({k: v for k, v in literal.items() if k != "hostname"}, "dagster.yaml", environ={})
    assert postgres_db_section({"telemetry": {"enabled": False}}, "dagster.yaml") is None, "SQLite"
    with pytest.raises(InstanceSettingsError, match="a postgres_url is not checked"):
        postgres_db_section({"storage": {"postgres": {"postgres_url": {"env": "URL"}}}}, "dagster.yaml")
