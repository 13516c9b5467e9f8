"""A tiny HTTP client for the arena tests: stdlib http.client, one cookie (the session)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class ArenaClient:
    base: str
    session: str | None = None
    replies: list[Reply] = field(default_factory=list)

    def request(self, method: str, path: str, body: dict | None = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        url = urlsplit(self.base)
        con = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        sent = dict(headers or {})
        if body is not None:
            raw = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if self.session:
            sent["Cookie"] = f"arena_session={self.session}"
        try:
            con.request(method, path, body=raw, headers=sent)
            response = con.getresponse()
            reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            con.close()
        cookie = reply.headers.get("set-cookie", "")
        if cookie.startswith("arena_session="):
            self.session = cookie.split(";")[0].split("=", 1)[1]
        self.replies.append(reply)
        return reply

    def join(self, name: str, token: str | None = None) -> Reply:
        return self.request("POST", "/api/join", {"name": name, **({"token": token} if token else {})})

    def pair(self) -> Reply:
        return self.request("POST", "/api/pair", {})

    def vote(self, token: str, choice: str) -> Reply:
        return self.request("POST", "/api/vote", {"token": token, "choice": choice})
