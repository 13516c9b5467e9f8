"""A real PostgreSQL server for the team-deployment tests, started once per test session.

Debian's ``postgresql`` package: ``initdb`` into a fresh temporary folder, password
(scram) authentication on 127.0.0.1 at a free port, no Unix socket, stopped at the end
of the session. The binaries are found on ``PATH`` or under ``/usr/lib/postgresql/*/bin``
(where Debian puts them). ``initdb`` refuses to run as root, so as root (CI) the server
runs as the ``postgres`` user the package creates (else ``nobody``), in a folder it owns.

Tests that need it skip, naming the package, where it is missing; under CI (``CI`` set,
``.ci/run`` installs the package) they fail instead, so a broken install cannot pass quietly.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench_assets.core.instance_settings import POSTGRES_ENV

HOST = "127.0.0.1"
SUPERUSER = "bench"
MISSING = "needs Debian's postgresql package (initdb, pg_ctl): apt-get install -y postgresql"


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (symlinks on PATH resolved), newest first."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name), reverse=True)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _major(version: str) -> int:
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run as when this process is root (initdb refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' account to run PostgreSQL as")


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path
    port: int
    password: str
    account: pwd.struct_passwd | None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        as_user = {} if self.account is None else {
            "user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        return subprocess.run([str(self.bin_dir / argv[0]), *argv[1:]], cwd=self.folder, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"}, **as_user)

    def start(self) -> None:
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.account is not None:
            for path in (self.folder, pwfile):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        init = self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--locale=C", "-E", "UTF8",
                         "--no-sync", "--no-instructions")
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        pwfile.unlink()
        with (self.data_dir / "postgresql.conf").open("a") as conf:  # TCP on loopback only; speed over durability
            conf.write(f"listen_addresses = '{HOST}'\nport = {self.port}\nunix_socket_directories = ''\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        started = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.folder / "server.log"), "-w",
                            "-t", "60", "start")
        if started.returncode:
            log = (self.folder / "server.log").read_text() if (self.folder / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def env(self, db_name: str, password: str | None = None) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables that point a Dagster instance at ``db_name`` on this server."""
        values = {"hostname": HOST, "port": str(self.port), "username": SUPERUSER,
                  "password": self.password if password is None else password, "db_name": db_name}
        return {POSTGRES_ENV[field]: value for field, value in values.items()}

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host=HOST, port=self.port, user=SUPERUSER, password=self.password,
                                      dbname="postgres")
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name


def start_postgres() -> PostgresServer:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(MISSING)
    # Not under pytest's tmp folder: that one is private to root, and the server may run as postgres.
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = PostgresServer(bin_dir, folder, _free_port(), secrets.token_urlsafe(18), _server_account())
    try:
        server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (per xdist worker); each test creates its own database."""
    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING} (.ci/run installs it)")
        pytest.skip(MISSING)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
