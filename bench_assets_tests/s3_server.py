"""A real S3-compatible server on 127.0.0.1 for the object-storage tests: moto's standalone server.

Started once per test session as its own process (``python -m moto.server``),
so the store talks HTTP to it exactly as it would to S3, MinIO or R2. The
credentials are moto's dummy ones, set in the environment as a user would.
"""

from __future__ import annotations


import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

BUCKET = "bench-test"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                     "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]  # what a process needs to reach it: endpoint + dummy credentials


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, log: Path, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"moto server not listening on 127.0.0.1:{port} after {limit_s} s")


def start_s3_server() -> Iterator[S3Server]:
    pytest.importorskip("moto.server", reason="moto[server] (pip) is needed for the object-storage tests")
    port = _free_port()
    # Its request log goes to a file: a pipe nobody reads fills up (64 KiB) and the server blocks mid-request.
    log = Path(tempfile.mkdtemp(prefix="moto-")) / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        server = S3Server(f"http://127.0.0.1:{port}", {**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def make_bucket(server: S3Server, name: str) -> None:
    """Create ``name`` (idempotent) through the server's own S3 API."""
    import s3fs

    fs = s3fs.S3FileSystem(key=server.env["AWS_ACCESS_KEY_ID"], secret=server.env["AWS_SECRET_ACCESS_KEY"],
                           client_kwargs={"endpoint_url": server.endpoint})
    if not fs.exists(name):
        fs.mkdir(name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    yield from start_s3_server()


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> S3Server:
    """The server's endpoint and credentials in this test's environment, and the test bucket created."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    import fsspec

    fsspec.config.conf.pop("s3", None)
    make_bucket(s3_server, BUCKET)
    return s3_server


def local_or_s3_store(request, local_root, prefix: str = ""):
    """The store of a test parametrized over ``["local", "s3"]``: a folder, or a prefix of the
    test bucket named after the test (so tests sharing the server never see each other's objects)."""
    from bench_assets.storage.store import open_store

    if request.param == "local":
        return open_store(local_root)
    request.getfixturevalue("s3_env")
    name = request.node.name.replace("[", "-").rstrip("]")
    return open_store(f"s3://{BUCKET}/{name}{prefix}")


__all__ = ["BUCKET", "S3Server", "local_or_s3_store", "s3_env", "s3_server", "start_s3_server", "make_bucket"]

