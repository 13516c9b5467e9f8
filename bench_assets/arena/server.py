"""Run the arena on uvicorn, on a socket we bind ourselves (``core/web.py``, shared with the workbench).

Binding first lets ``--port 0`` pick a free port and still print the real
address, and lets tests run the very same server in a thread. The access log
is off: paths hold nothing secret, but a quiet terminal keeps the one line
that matters (the address) visible.
"""

from __future__ import annotations

import socket

from bench_assets.arena.app import Arena, build_app
from bench_assets.core import web
from bench_assets.core.web import LOOPBACK, bind

__all__ = ["LOOPBACK", "ServerThread", "bind", "serve"]


def serve(arena: Arena, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C)."""
    web.make_server(build_app(arena)).run(sockets=[sock])


class ServerThread(web.ServerThread):
    """The arena's server in a background thread (tests, notebooks): ``with ServerThread(arena) as url:``."""

    def __init__(self, arena: Arena, host: str = "127.0.0.1") -> None:
        super().__init__(build_app(arena), host)
