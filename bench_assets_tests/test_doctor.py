"""`bench doctor`: one line per check, FAIL lines say what is wrong and what to set, secrets never shown.

The PostgreSQL checks run against the real server the harness starts (``postgres_server``).
"""

from __future__ import annotations

import re

import pytest
import yaml

from bench_assets.cli import main
from bench_assets.compute.backend import BACKENDS, BackendKind, PoolSize
from bench_assets.core.config import BackendNotReady
from bench_assets_tests.conftest import REPO
from bench_assets_tests.postgres_server import _free_port

CREDENTIAL_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "CIVITAI_TOKEN", "CIVITAI_API_TOKEN", "MODAL_TOKEN_ID",
                   "MODAL_TOKEN_SECRET", "BENCH_COMPUTE", "BENCH_INSTANCE", "BENCH_GPUS")


@pytest.fixture
def machine(data_dir, tmp_path, monkeypatch):
    """A machine with nothing set beyond the data dir: no tokens, no HF login, no Modal config."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "modal.toml"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def _doctor(capsys) -> tuple[int, dict[str, str]]:
    """Exit status and each check's line, by check name; every line is `ok|FAIL  <check>  <detail>`."""
    code = main(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert all(re.match(r"(ok  |FAIL)  \w+ +\S", line) for line in lines), lines
    return code, {line.split()[1]: line for line in lines}


def _postgres_instance(capsys, monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["instance-config", "--template", str(REPO / "dagster.yaml"), "--instance", "postgres"]) == 0
    assert "PostgreSQL" in capsys.readouterr().out


def test_doctor_all_ok_on_a_real_postgres(machine, postgres_server, capsys, monkeypatch):
    db = postgres_server.create_database("doctor_ok")
    _postgres_instance(capsys, monkeypatch, postgres_server.env(db))
    code, lines = _doctor(capsys)
    assert code == 0 and list(lines) == ["instance", "storage", "compute", "credentials"]
    assert all(line.startswith("ok  ") for line in lines.values()), lines
    assert re.match(rf"ok +instance +PostgreSQL at 127\.0\.0\.1:{postgres_server.port}/doctor_ok \(no tables yet",
                    lines["instance"])
    assert "local: cpu" in lines["compute"] or "local: cuda" in lines["compute"]
    assert "PostgreSQL password (DAGSTER_PG_PASSWORD)" in lines["credentials"]
    assert "absent: Hugging Face token, CivitAI token, Modal token" in lines["credentials"]
    assert postgres_server.password not in "".join(lines.values())


def test_doctor_wrong_password_names_the_variable_never_the_password(machine, postgres_server, capsys, monkeypatch):
    wrong = "not-the-password-7f3a"
    _postgres_instance(capsys, monkeypatch, postgres_server.env("postgres", password=wrong))
    code, lines = _doctor(capsys)
    assert code == 1
    assert lines["instance"] == (f"FAIL  instance     PostgreSQL at 127.0.0.1:{postgres_server.port}/postgres refused "
                                 "the password of user 'bench': check DAGSTER_PG_PASSWORD")
    assert wrong not in "".join(lines.values()) and postgres_server.password not in "".join(lines.values())
    assert lines["storage"].startswith("ok  "), "one bad check does not hide the others"


def test_doctor_missing_variable_and_unreachable_server(machine, capsys, monkeypatch):
    env = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(_free_port()), "DAGSTER_PG_USERNAME": "bench",
           "DAGSTER_PG_PASSWORD": "secret-9c1e", "DAGSTER_PG_DB": "dagster"}
    _postgres_instance(capsys, monkeypatch, env)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    monkeypatch.setenv("DAGSTER_PG_HOST", "")
    code, lines = _doctor(capsys)
    assert code == 1
    assert re.match(r"FAIL +instance +not set: DAGSTER_PG_HOST, DAGSTER_PG_PASSWORD \(\S+/dagster\.yaml reads them",
                    lines["instance"])
    assert "absent: " in lines["credentials"] and "PostgreSQL password" in lines["credentials"].split("absent: ")[1]

    monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "secret-9c1e")
    code, lines = _doctor(capsys)  # nothing listens on that port
    assert code == 1
    port = env["DAGSTER_PG_PORT"]
    assert re.match(rf"FAIL +instance +cannot reach PostgreSQL at 127\.0\.0\.1:{port} \(.*refused.*\): "
                    "is it running\\? check DAGSTER_PG_HOST and DAGSTER_PG_PORT$", lines["instance"])
    assert "secret-9c1e" not in "".join(lines.values())


def test_doctor_on_the_local_defaults_and_what_it_catches(machine, data_dir, capsys, monkeypatch):
    code, lines = _doctor(capsys)
    assert code == 1 and lines["instance"] == (f"FAIL  instance     no {machine / 'dagster_home' / 'dagster.yaml'}: "
                                               "write it with `bench instance-config` (make install does)")

    (machine / "dagster_home").mkdir()
    (machine / "dagster_home" / "dagster.yaml").write_text("concurrency: [runs:\n  - {")
    code, lines = _doctor(capsys)  # each line is one line, whatever the YAML parser says
    config_file = machine / "dagster_home" / "dagster.yaml"
    assert code == 1 and lines["instance"].startswith(f"FAIL  instance     {config_file}: invalid YAML (")

    assert main(["instance-config", "--template", str(REPO / "dagster.yaml")]) == 0, "SQLite: the default"
    capsys.readouterr()
    code, lines = _doctor(capsys)
    assert code == 0, lines
    assert lines["instance"] == f"ok    instance     SQLite in {machine / 'dagster_home'} (runs, event log, schedules)"
    assert lines["storage"] == f"ok    storage      data in {data_dir} (writable)"

    monkeypatch.setenv("BENCH_INSTANCE", "postgres")  # asked for, but the file was rendered for SQLite
    monkeypatch.setenv("BENCH_COMPUTE", "modal")  # and no Modal token anywhere
    monkeypatch.setenv("HF_TOKEN", "hf_pasted-with-newline\n")
    (data_dir / "prompts" / "default.jsonl").unlink()
    code, lines = _doctor(capsys)
    assert code == 1 and all(line.startswith("FAIL") for line in lines.values()), lines
    assert "BENCH_INSTANCE=postgres but" in lines["instance"] and "bench instance-config" in lines["instance"]
    assert f"no prompt suite at {data_dir / 'prompts' / 'default.jsonl'}" in lines["storage"]
    assert "BENCH_COMPUTE=modal but no Modal token" in lines["compute"] and "modal setup" in lines["compute"]
    assert lines["credentials"].endswith("HF_TOKEN has spaces or a line break around it: set it again without them")
    assert "pasted" not in "".join(lines.values())


def test_doctor_checks_the_object_store_root(machine, data_dir, s3_env, capsys, monkeypatch):
    """With the results in a bucket (real moto server), the storage line is the bucket's own check."""
    assert main(["instance-config", "--template", str(REPO / "dagster.yaml")]) == 0
    capsys.readouterr()
    monkeypatch.setenv("BENCH_STORAGE_ROOT", "s3://bench-test/doctor")
    code, lines = _doctor(capsys)
    assert code == 0 and lines["storage"] == "ok    storage      images and warehouse in s3://bench-test/doctor (writable)"

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-do-not-print")
    monkeypatch.setenv("BENCH_STORAGE_ROOT", "s3://no-such-bucket/results")
    code, lines = _doctor(capsys)
    assert code == 1 and lines["storage"].startswith("FAIL  storage      s3://no-such-bucket/results: not writable (")
    assert "AWS_ENDPOINT_URL" in lines["storage"] and "do-not-print" not in "".join(lines.values())


def test_doctor_fails_a_misspelt_backend_naming_the_known_ones(machine, data_dir, capsys, monkeypatch):
    """The compute line reads the backend through ``BACKENDS``: a typo is a FAIL, never "local ... ok"."""
    config_file = data_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text()) or {}
    config_file.write_text(yaml.safe_dump({**config, "compute": {**config.get("compute", {}), "backend": "modall"}}))
    code, lines = _doctor(capsys)
    assert code == 1 and lines["compute"].startswith("FAIL  compute      "), lines["compute"]
    assert f"compute backend 'modall' is not one of {tuple(BACKENDS)}" in lines["compute"]
    assert str(config_file) in lines["compute"], "names the file the typo is in"

    monkeypatch.setenv("BENCH_COMPUTE", "lokal")
    code, lines = _doctor(capsys)
    assert code == 1 and lines["compute"].startswith("FAIL  compute      BENCH_COMPUTE: compute backend 'lokal'")


def test_doctor_describes_a_new_backend_from_its_row(machine, data_dir, capsys, monkeypatch):
    """A backend added as one ``BACKENDS`` row is reported by its own ``describe``, its failure as a FAIL line."""
    def describe(section):
        if section.get("queue") != "gpu":
            raise BackendNotReady("slurm: no queue named in compute.queue")
        return "slurm: queue gpu"

    row = BackendKind(build=lambda settings, context: None, gpu_pool=lambda: PoolSize(1, "queue"),
                      preflight=lambda section: None, describe=describe)
    monkeypatch.setitem(BACKENDS, "slurm", row)
    monkeypatch.setenv("BENCH_COMPUTE", "slurm")
    code, lines = _doctor(capsys)
    assert lines["compute"] == "FAIL  compute      slurm: no queue named in compute.queue"

    config_file = data_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text()) or {}
    config_file.write_text(yaml.safe_dump({**config, "compute": {"queue": "gpu"}}))
    code, lines = _doctor(capsys)
    assert lines["compute"] == "ok    compute      slurm: queue gpu"
