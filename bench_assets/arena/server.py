"""Run the arena on uvicorn, on a socket we bind ourselves.

Binding first lets ``--port 0`` pick a free port and still print the real
address, and lets tests run the very same server in a thread. The access log
is off: paths hold nothing secret, but a quiet terminal keeps the one line
that matters (the address) visible.
"""

from __future__ import annotations

import socket
import threading

import uvicorn

from bench_assets.arena.app import Arena, build_app

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(arena: Arena) -> uvicorn.Server:
    config = uvicorn.Config(build_app(arena), log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(arena: Arena, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C)."""
    make_server(arena).run(sockets=[sock])


class ServerThread:
    """The same server in a background thread (tests, notebooks): ``with ServerThread(arena) as url:``."""

    def __init__(self, arena: Arena, host: str = "127.0.0.1") -> None:
        self.sock = bind(host, 0)
        self.server = make_server(arena)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.01)
        return self.url

    def __exit__(self, *_) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
