"""Run the workbench on uvicorn, on a socket bound first (``core/web.py``, shared with the arena).

``--port 0`` picks a free port and still prints the real address; tests run
the very same app in a thread (``core.web.ServerThread(build_app(...))``).
"""

from __future__ import annotations

import socket

from bench_assets.core import web
from bench_assets.core.errors import BenchError
from bench_assets.workbench.app import Workbench, build_app

SHARED_TOKEN_ENV = "BENCH_WORKBENCH_TOKEN"  # read from the environment, the token stays out of `ps`
DEFAULT_PORT = 8766  # next to the arena's and the report's 8765


def shared_token(given: str | None = None) -> str | None:
    """``bench prompts --token``, else ``BENCH_WORKBENCH_TOKEN``; None: no token."""
    return web.shared_token(given, SHARED_TOKEN_ENV)


class TokenRequired(BenchError, ValueError):
    """Listening beyond this machine without a token: refused (anyone on the network could edit the suites)."""


def listen(bench: Workbench, host: str, port: int) -> socket.socket:
    """The bound socket; beyond loopback only with a shared token."""
    if host not in web.LOOPBACK and not bench.shared_token:
        raise TokenRequired(f"listening on {host} needs a shared token: --token or {SHARED_TOKEN_ENV} "
                            "(anyone who can reach the port could edit the prompt suites)")
    return web.bind(host, port)


def serve(bench: Workbench, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C)."""
    web.make_server(build_app(bench)).run(sockets=[sock])


def workbench_hint() -> str:
    """The line ``bench demo`` prints: where the workbench is and how to start it."""
    return (f"prompt workbench: `bench prompts` (or `make prompts`) serves data/prompts/ on "
            f"http://127.0.0.1:{DEFAULT_PORT}/ (docs/workbench.md)")
