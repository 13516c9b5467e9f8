"""Helpers for the workbench tests: the arena tests' HTTP client sending the token, and a hash of a folder tree."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench_assets_tests.arena.http_client import ArenaClient, Reply


@dataclass
class WorkbenchClient(ArenaClient):
    """The arena tests' client, sending the workbench token (when given) with every request."""

    token: str | None = None

    def request(self, method: str, path: str, body: dict | None = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        sent = {**(headers or {}), **({"X-Bench-Token": self.token} if self.token else {})}
        return super().request(method, path, body, raw, sent)

    def suite(self, name: str = "default") -> dict:
        reply = self.request("GET", f"/api/suites/{name}")
        assert reply.status == 200, reply.body
        return reply.json()

    def edit(self, version: str, edits: list[dict], name: str = "default") -> Reply:
        return self.request("POST", f"/api/suites/{name}/edit", {"version": version, "edits": edits})

    def undo(self, version: str, name: str = "default") -> Reply:
        return self.request("POST", f"/api/suites/{name}/undo", {"version": version})

    def upload(self, data: bytes, filename: str) -> Reply:
        return self.request("POST", "/api/propose", raw=data,
                            headers={"X-Filename": quote(filename, safe=""), "Content-Type": "application/octet-stream"})


def tree_hash(root: Path) -> str:
    """Every file's path and bytes under ``root`` (and every folder's path): any write shows."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def assert_json_error(reply: Reply, status: int, *words: str) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert b"Traceback" not in reply.body and all(w.lower() in error.lower() for w in words), error
