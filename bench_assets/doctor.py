"""``bench doctor``: can this machine (or container) run the benchmark? One line per check.

A team deployment has more to get wrong than a laptop: a database and its
credentials, tokens in the environment, a GPU the container may not see, a
data volume mounted read-only. Learning it from a failed run costs a run;
each check here says ``ok`` with what it found, or ``FAIL`` with what is
wrong and what to set. Secrets are reported present or absent, never shown.

It sits above ``storage`` and ``compute``, beside ``definitions``, and imports
no Dagster: it reads the rendered ``dagster.yaml`` itself and talks to
PostgreSQL with the driver dagster-postgres uses. The CLI asks the same checks
before opening the instance (``require_instance``) and after an unexpected
error (``unreachable_service``), so a stopped service is one line everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench_assets.compute.backend import backend_kind, configured_compute
from bench_assets.compute.modal_auth import modal_token_source
from bench_assets.core.config import load_config
from bench_assets.core.errors import BenchError
from bench_assets.core.instance_settings import (
    POSTGRES_ENV,
    InstanceSettingsError,
    PostgresSettings,
    instance_kind,
    postgres_db_section,
    resolve_postgres,
)
from bench_assets.core.paths import DataPaths
from bench_assets.core.redaction import redact_text, redact_url
from bench_assets.core.yaml_files import read_yaml_mapping
from bench_assets.storage.health import check_storage, not_writable, result_store_url

# Dagster's table for each store the instance keeps (dagster-postgres creates them on first open).
INSTANCE_TABLES = {"runs": "runs", "event_logs": "event log", "instigators": "schedules"}
# Storage set class by class (older dagster.yaml files): someone chose it on purpose; not second-guessed.
HAND_WRITTEN_STORAGE = ("run_storage", "event_log_storage", "schedule_storage")
CONNECT_TIMEOUT_S = 5
# Words in the driver's message -> what to tell the user (the first entry whose words all appear wins).
CONNECTION_PROBLEMS = (
    (("password authentication failed",), "{where} refused the password of user {user!r}: check {password_env}"),
    (("no password supplied",), "{where} wants a password for user {user!r}: set {password_env}"),
    (("role", "does not exist"), "{where} has no user {user!r}: create it or fix {username_env}"),
    (("database", "does not exist"), "{where} has no database {db!r}: create it or fix {db_name_env}"),
    ((), "cannot reach PostgreSQL at {host}:{port} ({reason}): is it running? check {hostname_env} and {port_env}"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.name:<11}  {self.detail}"


class ServiceUnreachable(BenchError):
    """The Dagster instance or the result store cannot be used: the one line ``bench doctor`` would print."""


def run_checks(paths: DataPaths) -> list[Check]:
    return [check_instance(paths.dagster_home()), _storage(paths), check_compute(paths), check_credentials()]


def require_instance(home: Path) -> None:
    """Before a command opens the instance: its folder is writable, or its PostgreSQL answers (5 s at most).

    dagster-postgres retries a refused connection for a minute, logging each
    try; asking once here turns that into doctor's one line.
    """
    check = check_instance(home)
    if not check.ok:
        raise ServiceUnreachable(f"the Dagster instance: {check.detail} (`bench doctor` checks everything)")


def unreachable_service(paths: DataPaths) -> str | None:
    """After an unexpected error: is a service down (the result store, the instance)? Its one line, else None.

    A stopped object store or database makes the libraries raise a dozen
    different exceptions with long tracebacks; the checks name the service
    and the setting to fix instead. None: every service answers, the error is a bug.
    """
    for check in (_storage(paths), check_instance(paths.dagster_home())):
        if not check.ok:
            return f"{check.name}: {check.detail} (`bench doctor` checks everything)"
    return None


def check_instance(home: Path) -> Check:
    """The rendered ``dagster.yaml`` parses; its SQLite folder is writable or its PostgreSQL answers."""
    config_file = home / "dagster.yaml"
    try:
        config = _read_instance_config(config_file)
        if by_hand := [key for key in HAND_WRITTEN_STORAGE if key in config]:
            return Check("instance", True, f"{', '.join(by_hand)} written by hand in {config_file}: not checked")
        section = postgres_db_section(config, str(config_file))
        if section is None:
            if instance_kind() == "postgres":
                raise InstanceSettingsError(f"BENCH_INSTANCE=postgres but {config_file} keeps SQLite: "
                                            "render it again with `bench instance-config`")
            if reason := not_writable(home):
                raise InstanceSettingsError(f"cannot write in {home} ({reason}): fix it or set DAGSTER_HOME")
            return Check("instance", True, f"SQLite in {home} (runs, event log, schedules)")
        settings = resolve_postgres(section, str(config_file))
        return Check("instance", True, f"PostgreSQL at {settings.where()} ({_postgres_tables(settings)})")
    except InstanceSettingsError as exc:
        return Check("instance", False, str(exc))


def _read_instance_config(config_file: Path) -> dict:
    if not config_file.is_file():
        raise InstanceSettingsError(f"no {config_file}: write it with `bench instance-config` (make install does)")
    try:
        return read_yaml_mapping(config_file, InstanceSettingsError, "a mapping of instance settings")
    except InstanceSettingsError as exc:
        raise InstanceSettingsError(" ".join(str(exc).split())) from None  # one line


def _postgres_tables(settings: PostgresSettings) -> str:
    """Which of Dagster's stores already have tables in the database (connecting proves the credentials)."""
    import psycopg2

    try:
        connection = psycopg2.connect(host=settings.hostname, port=settings.port, user=settings.username,
                                      password=settings.password, dbname=settings.db_name,
                                      connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg2.Error as exc:
        raise InstanceSettingsError(connection_problem(settings, str(exc))) from None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            tables = {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()
    found = [label for table, label in INSTANCE_TABLES.items() if table in tables]
    return ", ".join(found) if found else "no tables yet: Dagster creates them when a process first opens it"


def connection_problem(settings: PostgresSettings, message: str) -> str:
    """One line from the driver's (multi-line) message, naming the variable to fix; never the password."""
    lowered = message.lower()
    reason = redact_text(" ".join(message.split()), [settings.password] if settings.password else [])
    template = next(text for words, text in CONNECTION_PROBLEMS if all(word in lowered for word in words))
    return template.format(where=f"PostgreSQL at {settings.where()}", user=settings.username, db=settings.db_name,
                           host=settings.hostname, port=settings.port, reason=reason,
                           **{f"{field}_env": env for field, env in POSTGRES_ENV.items()})


def _storage(paths: DataPaths) -> Check:
    problem = check_storage(paths)
    if problem:
        return Check("storage", False, problem)
    store = result_store_url(paths)
    where = f"images and warehouse in {redact_url(store)}" if store != str(paths.root) else f"data in {paths.root}"
    return Check("storage", True, f"{where} (writable)")


def check_compute(paths: DataPaths) -> Check:
    """The backend ``BENCH_COMPUTE`` / ``data/config.yaml`` selects (one of ``compute.backend.BACKENDS``, or a
    failure naming them), described by its own row, which also says when it cannot run here."""
    try:
        section = configured_compute(load_config(paths))
        return Check("compute", True, backend_kind(section["backend"]).describe(section))
    except BenchError as exc:
        return Check("compute", False, str(exc))


def _hf_login_file() -> str | None:
    """The token file ``huggingface-cli login`` wrote (diffusers reads it when no variable is set)."""
    hf_home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    path = os.environ.get("HF_TOKEN_PATH") or Path(hf_home) / "token"
    return str(path) if Path(path).is_file() else None


def _modal_config_file() -> str | None:
    """``~/.modal.toml`` (``modal setup``) when it holds a token."""
    source = modal_token_source()
    return source if source not in (None, "environment") else None


# Credentials reported present or absent: what, the variables that carry it, the file that may hold it instead.
CREDENTIALS = (
    ("Hugging Face token", ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"), _hf_login_file),
    ("CivitAI token", ("CIVITAI_TOKEN", "CIVITAI_API_TOKEN"), lambda: None),
    ("Modal token", ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"), _modal_config_file),
    ("PostgreSQL password", (POSTGRES_ENV["password"],), lambda: None),
)


def check_credentials() -> Check:
    """Which credentials this process has (present or absent, never the value), and any set so they cannot work."""
    present, absent, problems = [], [], []
    for what, names, stored_in in CREDENTIALS:
        found = [name for name in names if os.environ.get(name)]
        problems += [f"{name} has spaces or a line break around it: set it again without them"
                     for name in found if os.environ[name] != os.environ[name].strip()]
        source = ", ".join(found) or stored_in()
        (present if source else absent).append(f"{what} ({source})" if source else what)
    if problems:
        return Check("credentials", False, "; ".join(problems))
    return Check("credentials", True, f"present: {', '.join(present) or 'none'}; absent: {', '.join(absent) or 'none'}")
