"""`bench download` against a real HTTP server on 127.0.0.1 (never the internet).

The Hugging Face and CivitAI URLs below only feed pure functions (URL
rewriting, token choice, redaction); ``no_outside_network`` makes any
connection to a host other than this machine fail the test.

The test server supports Range requests, can drop the connection half-way
through a body, can ignore Range, redirect, and send Content-Disposition and
Hugging Face's ``X-Linked-ETag`` sha256.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import socket
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from bench_assets.models import download as dl
from bench_assets.models.download import DownloadError, download

SECRET = "hf_s3cr3t_t0ken_value"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch):
    """Resolving any name but this machine's is an error: nothing here may reach a hub."""
    real = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in _LOOPBACK:
            raise AssertionError(f"test tried to reach {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


class FileServer:
    """A tiny file host: ``files[path] = (body, extra headers)``; every request is recorded."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.redirects: dict[str, str] = {}
        self.drop_next: set[str] = set()
        self.ignore_range = False
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.origin}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path not in server.files:
                    # The reason phrase echoes the path and query, as careless servers do.
                    self.send_error(401 if self.path.startswith("/private") else 404, f"Not Found: {self.path}")
                    return
                body, extra = server.files[self.path]
                status, start = 200, 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if match and not server.ignore_range:
                    status, start = 206, int(match.group(1))
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                payload = body[start:]
                if self.path in server.drop_next:
                    server.drop_next.discard(self.path)
                    payload = payload[: len(payload) // 2]
                    self.close_connection = True
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def weights() -> bytes:
    return save({"w": np.arange(100_000, dtype=np.float32), "b": np.ones(7, dtype=np.float32)})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_full_download_with_server_checksum(server, weights, tmp_path):
    path = "/org/repo/resolve/main/unet/model.safetensors"
    server.files[path] = (weights, {"X-Linked-ETag": f'"{_sha(weights)}"'})
    lines: list[str] = []
    result = download(server.url(path), tmp_path / "models", log=lines.append)
    assert result.path == (tmp_path / "models" / "model.safetensors").resolve()
    assert result.path.read_bytes() == weights
    assert result.sha256 == _sha(weights) and not result.resumed
    assert _tree(tmp_path / "models") == ["model.safetensors"]  # no partial folder left behind
    assert any("verified" in line and "not verified" not in line for line in lines)
    assert any("100%" in line and "MB/s" in line for line in lines)


def test_resume_after_dropped_connection_sends_range(server, weights, tmp_path):
    server.files["/m.safetensors"] = (weights, {})
    server.drop_next.add("/m.safetensors")
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match="run the same command again"):
        download(server.url("/m.safetensors"), models, retries=0, log=lambda m: None)
    partials = list((models / ".downloads").iterdir())
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < len(weights)
    assert not (models / "m.safetensors").exists()

    kept = partials[0].stat().st_size
    result = download(server.url("/m.safetensors"), models, sha256=_sha(weights), log=lambda m: None)
    assert server.requests[-1][1].get("Range") == f"bytes={kept}-"
    assert result.resumed and result.sha256 == _sha(weights)
    assert (models / "m.safetensors").read_bytes() == weights


def test_dropped_connection_is_retried_within_one_call(server, weights, tmp_path):
    server.files["/m.safetensors"] = (weights, {})
    server.drop_next.add("/m.safetensors")
    result = download(server.url("/m.safetensors"), tmp_path, sha256=_sha(weights), log=lambda m: None)
    ranges = [headers.get("Range") for _, headers in server.requests]
    assert ranges[0] is None and ranges[1] == f"bytes={len(weights) // 2}-"
    assert result.path.read_bytes() == weights


def test_server_ignoring_range_restarts_instead_of_appending(server, weights, tmp_path):
    server.files["/m.safetensors"] = (weights, {})
    server.drop_next.add("/m.safetensors")
    server.ignore_range = True
    result = download(server.url("/m.safetensors"), tmp_path, log=lambda m: None)
    assert server.requests[1][1].get("Range") is not None  # it asked to resume...
    assert not result.resumed  # ...got a 200 and started over, so the file is not doubled
    assert result.path.read_bytes() == weights


@pytest.mark.parametrize("source", ["argument", "server"])
def test_wrong_checksum_leaves_nothing(server, weights, tmp_path, source):
    wrong = "0" * 64
    headers = {"X-Linked-ETag": f'"{wrong}"'} if source == "server" else {}
    server.files["/m.safetensors"] = (weights, headers)
    with pytest.raises(DownloadError) as err:
        download(server.url("/m.safetensors"), tmp_path / "models",
                 sha256=wrong if source == "argument" else None, log=lambda m: None)
    assert f"expected {wrong}, got {_sha(weights)}" in str(err.value)
    assert _tree(tmp_path / "models") == []


def test_pickle_refused_unless_allowed(server, weights, tmp_path):
    server.files["/api/download/models/7"] = (b"PK\x03\x04 pickle zip", {"Content-Disposition": 'attachment; filename="old.ckpt"'})
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match="pickle checkpoint"):
        download(server.url("/api/download/models/7"), models, log=lambda m: None)
    assert _tree(models) == []
    result = download(server.url("/api/download/models/7"), models, allow_pickle=True, log=lambda m: None)
    assert result.path.name == "old.ckpt" and result.path.read_bytes().startswith(b"PK")


def test_pickle_name_refused_before_any_request(server, tmp_path):
    with pytest.raises(DownloadError, match="pickle"):
        download(server.url("/model.pt"), tmp_path, name="model.pt", log=lambda m: None)
    assert server.requests == [] and _tree(tmp_path) == []


def test_invalid_safetensors_is_removed(server, tmp_path):
    server.files["/login.safetensors"] = (b"<html>please log in</html>" * 20, {})
    with pytest.raises(DownloadError, match="not a safetensors file"):
        download(server.url("/login.safetensors"), tmp_path / "models", log=lambda m: None)
    assert _tree(tmp_path / "models") == []


@pytest.mark.parametrize("disposition, name, stored", [
    ('attachment; filename="../../../evil.safetensors"', None, "evil.safetensors"),
    ("attachment; filename*=UTF-8''..%2F..%2Fsneaky.safetensors", None, "sneaky.safetensors"),
    (None, "../../x", "x.safetensors"),
    (None, "/etc/passwd.safetensors", "passwd.safetensors"),
])
def test_hostile_names_stay_inside_models(server, weights, tmp_path, disposition, name, stored):
    server.files["/api/download/models/1"] = (weights, {"Content-Disposition": disposition} if disposition else {})
    models = tmp_path / "a" / "b" / "models"
    result = download(server.url("/api/download/models/1"), models, name=name, log=lambda m: None)
    assert result.path == (models / stored).resolve()
    assert _tree(tmp_path) == ["a", "a/b", "a/b/models", f"a/b/models/{stored}"]


def test_token_sent_to_own_host_only_and_never_printed(server, weights, tmp_path, monkeypatch, capsys):
    cdn = FileServer()
    try:
        monkeypatch.setitem(dl.TOKEN_ENV, server.origin, ("HF_TOKEN",))
        cdn.files["/blob/abc"] = (weights, {"Content-Disposition": 'attachment; filename="m.safetensors"'})
        server.redirects["/org/m/resolve/main/m.safetensors"] = cdn.url("/blob/abc")
        server.redirects["/renamed.safetensors"] = server.url("/org/m/resolve/main/m.safetensors")
        download(server.url("/renamed.safetensors"), tmp_path, env={"HF_TOKEN": SECRET})  # default log: stderr
    finally:
        cdn.close()
    own = [headers.get("Authorization") for _, headers in server.requests]
    assert own == [f"Bearer {SECRET}"] * 2  # kept across a same-host redirect
    assert cdn.requests and all(SECRET not in str(headers) for _, headers in cdn.requests)
    assert (tmp_path / "m.safetensors").read_bytes() == weights

    with pytest.raises(DownloadError, match="token was refused") as err:
        download(server.url("/private/m.safetensors"), tmp_path, env={"HF_TOKEN": SECRET})
    captured = capsys.readouterr()
    assert "MB/s" in captured.err  # progress did go to stderr
    assert SECRET not in captured.err + captured.out + str(err.value)


def test_token_for_matches_exact_host():
    env = {"HF_TOKEN": "hf", "CIVITAI_API_TOKEN": "cv"}
    assert dl.token_for("https://huggingface.co/a/b/resolve/main/x.safetensors", env) == ("huggingface.co", "hf")
    assert dl.token_for("https://cdn-lfs.huggingface.co/x", env) is None
    assert dl.token_for("https://huggingface.co.evil.com/x", env) is None
    assert dl.token_for("https://civitai.com/api/download/models/1", env) == ("civitai.com", "cv")


def test_page_links_become_file_links():
    assert dl.normalise_url("https://huggingface.co/org/repo/blob/main/sub/m.safetensors") == (
        "https://huggingface.co/org/repo/resolve/main/sub/m.safetensors")
    assert dl.normalise_url("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713") == (
        "https://civitai.com/api/download/models/128713")
    with pytest.raises(DownloadError, match="modelVersionId"):
        dl.normalise_url("https://civitai.com/models/4384/dreamshaper")
    with pytest.raises(DownloadError, match="plain http"):
        dl.normalise_url("http://example.com/m.safetensors")
    assert "s3cret" not in dl.redact("https://civitai.com/api/download/models/1?token=s3cret")


def test_cli_download(server, weights, tmp_path, monkeypatch, capsys):
    from bench_assets.cli import main

    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    server.files["/m.safetensors"] = (weights, {})
    assert main(["download", server.url("/m.safetensors"), "--sha256", "f" * 64, "--name", "mine"]) == 2
    assert "expected " + "f" * 64 in capsys.readouterr().err
    assert main(["download", server.url("/m.safetensors"), "--sha256", _sha(weights), "--name", "mine"]) == 0
    assert (tmp_path / "data" / "models" / "mine.safetensors").read_bytes() == weights


LEAKS = {"api_key": "AK-leak-1", "auth": "AU-leak-2", "X-Amz-Signature": "SG-leak-3",
         "X-Amz-Credential": "CR-leak-4", "X-Amz-Security-Token": "ST-leak-5", "X-Goog-Signature": "GS-leak-6",
         "X-Goog-Credential": "GC-leak-7", "sig": "AZ-leak-8", "password": "PW-leak-9", "hf_token": "HF-leak-0"}


def test_credentials_in_urls_never_reach_any_output(server, weights, tmp_path, monkeypatch, capsys, caplog):
    """A missing file (the server echoes the query in its reason), a signed CDN redirect that drops
    the connection once (a retry line, then success) and a login page: no credential in stdout,
    stderr, an exception's text or a log record; what happened is still said."""
    from bench_assets.cli import main

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    query = urllib.parse.urlencode(LEAKS)
    cdn_path = f"/blob?{query}"
    server.files[cdn_path] = (weights, {"Content-Disposition": 'attachment; filename="signed.safetensors"'})
    server.redirects[f"/signed.safetensors?{query}"] = server.url(cdn_path)
    server.drop_next.add(cdn_path)
    server.files[f"/login.safetensors?{query}"] = (b"<html>please log in</html>", {})

    outputs = []
    for path, expected in ((f"/missing.safetensors?{query}", 2), (f"/signed.safetensors?{query}", 0),
                           (f"/login.safetensors?{query}", 2)):
        assert main(["download", server.url(path)]) == expected, path
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    with pytest.raises(DownloadError) as err:
        download(server.url(f"/missing.safetensors?{query}"), tmp_path / "lib")
    outputs += [str(err.value), capsys.readouterr().err, *(r.getMessage() for r in caplog.records)]

    text = "\n".join(outputs)
    assert [value for value in LEAKS.values() if value in text] == []
    assert "HTTP 404" in text and "api_key=***" in text and "resuming" in text and "please log in" not in text
    assert (tmp_path / "data" / "models" / "signed.safetensors").read_bytes() == weights
