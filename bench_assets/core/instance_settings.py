"""Which database the Dagster instance keeps its runs, event log and schedules in.

One machine keeps them in SQLite files under ``$DAGSTER_HOME`` (the default:
nothing to set up). A team points every process (webserver, daemon, code
server, ``bench run``) at one PostgreSQL database instead, chosen with
``BENCH_INSTANCE=postgres`` when ``bench instance-config`` renders
``dagster.yaml``. The rendered file names the environment variables below
(Dagster's ``env:`` references), never their values, so no password is ever
written to a file; each process reads them from its own environment.

Plain Python: the renderer (``defs/instance_config.py``) and ``bench doctor``
both read this table, so the variable names live in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from bench_assets.core.errors import BenchError

INSTANCE_ENV = "BENCH_INSTANCE"
INSTANCE_KINDS = ("sqlite", "postgres")

# dagster-postgres's ``postgres_db`` field -> the environment variable it is read from ...
POSTGRES_ENV = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USERNAME",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
# ... and Dagster's value for a field the file leaves out (the others are required).
POSTGRES_DEFAULTS = {"port": 5432, "password": ""}
PASSWORD_ENV = POSTGRES_ENV["password"]
POSTGRES_SCHEME = "postgresql+psycopg2"

POSTGRES_BLOCK = (
    "\n# BENCH_INSTANCE=postgres: runs, event log and schedules in one PostgreSQL database\n"
    "# (dagster-postgres). Every value is read from the environment of each process; none is\n"
    "# written here, the password least of all.\n"
    "storage:\n  postgres:\n    postgres_db:\n"
    + "".join(f"      {field}: {{env: {name}}}\n" for field, name in POSTGRES_ENV.items())
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres installs psycopg2.
    + f"      scheme: {POSTGRES_SCHEME}\n"
)


class InstanceSettingsError(BenchError, ValueError):
    """The instance configuration cannot be used; the message names the setting and the fix."""


def instance_kind(explicit: str | None = None) -> str:
    """``sqlite`` or ``postgres``: ``explicit`` (a command-line flag) wins over ``BENCH_INSTANCE``."""
    kind = (explicit or os.environ.get(INSTANCE_ENV) or "sqlite").strip().lower()
    if kind not in INSTANCE_KINDS:
        source = "--instance" if explicit else INSTANCE_ENV
        raise InstanceSettingsError(f"{source}={kind!r} is not one of {', '.join(INSTANCE_KINDS)}")
    return kind


@dataclass(frozen=True)
class PostgresSettings:
    """Where the instance's PostgreSQL database is, with the password kept out of ``repr``."""

    hostname: str
    port: int
    username: str
    db_name: str
    password: str = ""

    def __repr__(self) -> str:
        return f"PostgresSettings({self.where()!r}, user={self.username!r})"

    def where(self) -> str:
        return f"{self.hostname}:{self.port}/{self.db_name}"


def postgres_db_section(config: Mapping[str, Any], source: str) -> Mapping[str, Any] | None:
    """The ``postgres_db`` mapping of a parsed ``dagster.yaml``, or None when the instance is not PostgreSQL."""
    storage = config.get("storage")
    postgres = storage.get("postgres") if isinstance(storage, Mapping) else None
    if postgres is None:
        return None
    section = postgres.get("postgres_db") if isinstance(postgres, Mapping) else None
    if not isinstance(section, Mapping):
        raise InstanceSettingsError(f"{source}: storage.postgres has no postgres_db mapping (a postgres_url is not "
                                    "checked): write it as `bench instance-config` does")
    return section


def resolve_postgres(section: Mapping[str, Any], source: str,
                     environ: Mapping[str, str] = os.environ) -> PostgresSettings:
    """Each field's value, reading ``{env: NAME}`` references as Dagster does.

    Raises with every missing variable named at once (fixing one at a time is
    tedious), and refuses a password written into the file itself.
    """
    password = section.get("password")
    if password is not None and not isinstance(password, Mapping):
        raise InstanceSettingsError(
            f"{source}: storage.postgres.postgres_db.password is written in the file; "
            f"use `password: {{env: {PASSWORD_ENV}}}` and set {PASSWORD_ENV} instead")
    values: dict[str, str] = {}
    missing: list[str] = []
    for field, default_env in POSTGRES_ENV.items():
        raw = section.get(field, POSTGRES_DEFAULTS.get(field))
        if raw is None:
            raise InstanceSettingsError(f"{source}: storage.postgres.postgres_db has no {field}; "
                                        f"use `{field}: {{env: {default_env}}}`")
        if isinstance(raw, Mapping):
            name = str(raw.get("env", default_env))
            if environ.get(name, "") == "":
                missing.append(name)
            values[field] = environ.get(name, "")
        else:
            values[field] = str(raw)
    if missing:
        raise InstanceSettingsError(
            f"not set: {', '.join(missing)} ({source} reads them for the PostgreSQL instance); "
            "export them, or put them in the compose .env")
    if not values["port"].isdigit():
        raise InstanceSettingsError(f"{POSTGRES_ENV['port']}={values['port']!r} is not a port number")
    return PostgresSettings(hostname=values["hostname"], port=int(values["port"]), username=values["username"],
                            db_name=values["db_name"], password=values["password"])
