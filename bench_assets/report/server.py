"""``bench report --serve``: the report over HTTP, on 127.0.0.1 by default.

It serves the data directory's ``report/`` folder and the image store under
``/images/<key>``, and nothing else (not the models, the warehouse or the
config). The pages link full-size images as ``../images/<key>``, which
resolves to ``/images/<key>``; the bytes come through the store, so the
same link works when the images are in a bucket (the only way a page
reaches them offline: a browser cannot read ``s3://``).
"""

from __future__ import annotations

import functools
import http.server
import mimetypes
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench_assets.core.config import load_config
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import Store, StoreError, clean_key
from bench_assets.storage.store import images_store

REPORT_FOLDER = "report"
IMAGES_ROUTE = "images"


class ReportHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of the report; images from the store; ``/`` redirects to the report."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path in ("", "/"):
            self.send_response(302)
            self.send_header("Location", f"/{REPORT_FOLDER}/index.html")
            self.end_headers()
            return
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        parts = self._parts()
        if parts and parts[0] == IMAGES_ROUTE and len(parts) > 1:
            self._send_image("/".join(parts[1:]), head)
        elif parts and parts[0] == REPORT_FOLDER and head:
            super().do_HEAD()
        elif parts and parts[0] == REPORT_FOLDER:
            super().do_GET()
        else:
            self.send_error(404, "not part of the report")

    def _parts(self) -> list[str] | None:
        """The request path's parts; None for anything with ``..`` or a hidden name."""
        parts = [p for p in unquote(urlsplit(self.path).path).split("/") if p]
        return None if ".." in parts or any(p.startswith(".") for p in parts) else parts

    def _send_image(self, key: str, head: bool) -> None:
        images: Store = self.server.images
        try:
            data = images.get_bytes(clean_key(key))
        except (OSError, StoreError):  # missing (FileNotFoundError), a folder, a key leaving the root
            self.send_error(404, "no such image")
            return
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(key)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(data_root: Path, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False,
                images: Store | None = None) -> http.server.ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port); call ``serve_forever``.

    ``images``: the image store (default: the one ``data_root``'s configuration names).
    """
    paths = DataPaths(Path(data_root).resolve())
    handler = functools.partial(ReportHandler, directory=str(paths.root))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.images = images if images is not None else images_store(paths, load_config(paths))
    server.verbose = verbose
    server.daemon_threads = True
    return server


def report_url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/{REPORT_FOLDER}/index.html"


def serve_in_thread(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread (tests, notebooks); stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name="bench-report-server", daemon=True)
    thread.start()
    return thread
