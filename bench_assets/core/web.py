"""What the project's small web apps (the arena, the prompt workbench) share.

Both run Starlette on uvicorn on a socket bound here (``--port 0`` can then
print the real address, and tests run the very same server in a thread),
answer errors as JSON ``{"error": ...}`` and never with a stack trace, add
the same protective headers to every response, and compare a shared token in
constant time. Starlette and uvicorn are plain Python web libraries, so this
sits in ``core`` where both apps (one layer up, side by side) can import it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading

import uvicorn
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def shared_token(given: str | None, env: str) -> str | None:
    """The token a client must send: ``given`` (a ``--token`` flag), else the environment variable ``env``."""
    return given or os.environ.get(env) or None


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a client's token with the expected one (hashed first: equal lengths)."""
    return hmac.compare_digest(hashlib.sha256(str(given or "").encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


def json_response(data: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


async def json_body(request: Request, max_bytes: int) -> dict:
    """The request's JSON object, or a 415 / 413 / 400 that says what is wrong with it."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send JSON (Content-Type: application/json)")
    body = await request.body()
    if len(body) > max_bytes:
        raise HTTPException(413, f"request body over {max_bytes} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "request body must be a JSON object")
    return data


def json_error_handlers(server_name: str) -> dict:
    """Starlette exception handlers: an HTTPException's detail as ``{"error"}``, anything else a bare 500."""

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response({"error": exc.detail}, exc.status_code)

    async def server_error(_: Request, __: Exception) -> Response:
        return json_response({"error": f"internal error in the {server_name} server"}, 500)

    return {HTTPException: http_error, Exception: server_error}


class SecurityHeaders:
    """ASGI middleware: the same protective headers on every HTTP response.

    ``img_src``: where pages may load images from (the workbench previews an upload from a ``blob:`` URL).
    """

    def __init__(self, app, img_src: str = "'self'") -> None:
        self.app = app
        policy = f"default-src 'self'; img-src {img_src}; object-src 'none'; frame-ancestors 'none'"
        self.headers = [(b"content-security-policy", policy.encode()), *SECURITY_HEADERS]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(app) -> uvicorn.Server:
    """uvicorn without an access log: paths hold nothing secret, but the one line that matters stays visible."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


class ServerThread:
    """An app's server in a background thread (tests, notebooks): ``with ServerThread(app) as url:``."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        self.sock = bind(host, 0)
        self.server = make_server(app)
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
