"""``bench report --serve``: the report over HTTP, on 127.0.0.1 by default.

It serves the data directory's ``report/`` and ``images/`` folders and
nothing else (not the models, the warehouse or the config): the pages link
full-size images as ``../images/...``, which resolves to ``/images/...``.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

SERVED_FOLDERS = ("report", "images")


class ReportHandler(http.server.SimpleHTTPRequestHandler):
    """Static files under the served folders; ``/`` redirects to the report."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path in ("", "/"):
            self.send_response(302)
            self.send_header("Location", "/report/index.html")
            self.end_headers()
            return
        if not self._allowed():
            self.send_error(404, "not part of the report")
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._allowed():
            self.send_error(404, "not part of the report")
            return
        super().do_HEAD()

    def _allowed(self) -> bool:
        parts = [p for p in unquote(urlsplit(self.path).path).split("/") if p]
        return bool(parts) and parts[0] in SERVED_FOLDERS and ".." not in parts and not any(
            p.startswith(".") for p in parts)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(data_root: Path, host: str = "127.0.0.1", port: int = 8765,
                verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port); call ``serve_forever``."""
    handler = functools.partial(ReportHandler, directory=str(Path(data_root).resolve()))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.verbose = verbose
    server.daemon_threads = True
    return server


def report_url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/report/index.html"


def serve_in_thread(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread (tests, notebooks); stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name="bench-report-server", daemon=True)
    thread.start()
    return thread
