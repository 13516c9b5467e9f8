"""Everything the arena hands to a browser is signed with one server secret.

- a pair token binds a pair the server issued to the voter it was issued to
  (the pair's contents stay on the server: a token reveals no model);
- an image id names one side of one issued pair, so image URLs carry no path,
  no hash and nothing that links two pairs showing the same image;
- a session cookie carries the voter's name and proves the voter joined with
  the shared token (when one is required).

HMAC-SHA256, compared in constant time. The secret lives in the vote
database, so tokens and sessions survive a restart of the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from bench_assets.core import web

SIDES = ("left", "right")
SHARED_TOKEN_ENV = "BENCH_ARENA_TOKEN"  # read from the environment, the token stays out of `ps`


def shared_token(given: str | None = None) -> str | None:
    """The token voters must enter: ``given`` (``bench arena --token``), else ``BENCH_ARENA_TOKEN``; None: none."""
    return web.shared_token(given, SHARED_TOKEN_ENV)


def _mac(secret: bytes, purpose: str, *parts: str, length: int = 32) -> str:
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:length]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


class Signer:
    """Signs and checks pair tokens, image ids and sessions with one secret."""

    def __init__(self, secret: bytes, shared_token: str | None = None) -> None:
        self._secret = secret
        # Sessions made under one shared token stop working when it changes.
        self._token_tag = hashlib.sha256((shared_token or "").encode()).hexdigest()[:16]

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_hex(16)

    def pair_token(self, nonce: str, voter: str) -> str:
        return f"{nonce}.{_mac(self._secret, 'pair', nonce, voter)}"

    def open_pair_token(self, token: str, voter: str) -> str | None:
        """The nonce of a token issued to ``voter``, or None (forged, or another voter's)."""
        nonce, _, mac = str(token).partition(".")
        if not nonce or not hmac.compare_digest(mac, _mac(self._secret, "pair", nonce, voter)):
            return None
        return nonce

    def image_id(self, nonce: str, side: str) -> str:
        return f"{nonce}{SIDES.index(side)}{_mac(self._secret, 'image', nonce, side, length=24)}"

    def open_image_id(self, image_id: str) -> tuple[str, str] | None:
        """(nonce, side) of a genuine image id, else None."""
        if len(image_id) != 32 + 1 + 24 or image_id[32] not in "01":
            return None
        nonce, side = image_id[:32], SIDES[int(image_id[32])]
        return (nonce, side) if hmac.compare_digest(image_id, self.image_id(nonce, side)) else None

    def session(self, voter: str) -> str:
        return f"{_b64(voter)}.{_mac(self._secret, 'session', voter, self._token_tag)}"

    def open_session(self, cookie: str | None) -> str | None:
        """The voter of a genuine session cookie, else None."""
        encoded, _, mac = str(cookie or "").partition(".")
        voter = _unb64(encoded) if encoded else None
        if voter is None or not hmac.compare_digest(mac, _mac(self._secret, "session", voter, self._token_tag)):
            return None
        return voter

    def same_token(self, given: str | None, expected: str) -> bool:
        return web.same_token(given, expected)
