"""Votes on disk: one SQLite database owned by the arena server.

Why SQLite in WAL mode with ``synchronous=FULL``: a vote is acknowledged only
after its transaction commits, and with FULL the WAL is fsynced at every
commit, so a ``kill -9`` (or a power cut) after the answer loses nothing.
One writer (the server, serialising its writes behind a lock) and any number
of readers: the ``arena_ratings`` asset reads while voters keep voting, and
nobody's DuckDB session is involved, so no SQL user can ever block a vote.
Using a pair token and inserting its vote is one transaction, and a vote's
token is UNIQUE: a token counts once, even across restarts.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import polars as pl

CHOICES = ("left", "right", "tie", "both_bad")
ARENA_DIR = "arena"
DB_NAME = "votes.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS issued (
    nonce TEXT PRIMARY KEY, voter TEXT NOT NULL, issued_at TEXT NOT NULL,
    prompt_id TEXT NOT NULL, category TEXT NOT NULL, image_index INTEGER NOT NULL, seed INTEGER,
    model_left TEXT NOT NULL, model_right TEXT NOT NULL,
    sha256_left TEXT NOT NULL, sha256_right TEXT NOT NULL,
    path_left TEXT NOT NULL, path_right TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS votes (
    vote_id INTEGER PRIMARY KEY AUTOINCREMENT, nonce TEXT NOT NULL UNIQUE,
    voter TEXT NOT NULL, voted_at TEXT NOT NULL,
    prompt_id TEXT NOT NULL, category TEXT NOT NULL, image_index INTEGER NOT NULL, seed INTEGER,
    model_left TEXT NOT NULL, model_right TEXT NOT NULL,
    sha256_left TEXT NOT NULL, sha256_right TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'both_bad')));
"""

VOTE_COLUMNS = ("vote_id", "voter", "voted_at", "prompt_id", "category", "image_index", "seed",
                "model_left", "model_right", "sha256_left", "sha256_right", "choice")
VOTE_SCHEMA = {
    "vote_id": pl.Int64, "voter": pl.Utf8, "voted_at": pl.Utf8, "prompt_id": pl.Utf8, "category": pl.Utf8,
    "image_index": pl.Int64, "seed": pl.Int64, "model_left": pl.Utf8, "model_right": pl.Utf8,
    "sha256_left": pl.Utf8, "sha256_right": pl.Utf8, "choice": pl.Utf8,
}


def arena_db_path(data_root: Path) -> Path:
    """Where the votes live: ``data/arena/votes.sqlite``."""
    return Path(data_root) / ARENA_DIR / DB_NAME


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class IssuedPair:
    """A pair as issued to one voter: what the server knows and the browser must not."""

    nonce: str
    voter: str
    prompt_id: str
    category: str
    image_index: int
    seed: int | None
    model_left: str
    model_right: str
    sha256_left: str
    sha256_right: str
    path_left: str
    path_right: str

    def path(self, side: str) -> str:
        return self.path_left if side == "left" else self.path_right


class VoteRejected(Exception):
    """A vote the store refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class VoteStore:
    """The server's own connection; every write is serialised and fsynced before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.execute("PRAGMA busy_timeout=10000")
        self._con.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def secret(self) -> bytes:
        """The signing secret, made once and kept with the votes."""
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_bytes(32),))
            return bytes(self._con.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0])

    def issue(self, pair: IssuedPair) -> None:
        row = asdict(pair)
        names = ", ".join(row)
        with self._lock:
            self._con.execute(
                f"INSERT INTO issued ({names}, issued_at) VALUES ({', '.join('?' * len(row))}, ?)",
                (*row.values(), _now()),
            )

    def issued(self, nonce: str) -> IssuedPair | None:
        names = [f.name for f in fields(IssuedPair)]
        with self._lock:
            row = self._con.execute(f"SELECT {', '.join(names)} FROM issued WHERE nonce = ?", (nonce,)).fetchone()
        return IssuedPair(*row) if row else None

    def record_vote(self, nonce: str, voter: str, choice: str) -> dict:
        """Use the pair token and store its vote in one durable transaction."""
        if choice not in CHOICES:
            raise VoteRejected(400, f"choice must be one of {', '.join(CHOICES)}")
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                vote = self._use_token(nonce, voter, choice)
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
        return vote

    def _use_token(self, nonce: str, voter: str, choice: str) -> dict:
        pair = self._con.execute(
            "SELECT voter, used, prompt_id, category, image_index, seed, model_left, model_right, "
            "sha256_left, sha256_right FROM issued WHERE nonce = ?", (nonce,)).fetchone()
        if pair is None:
            raise VoteRejected(404, "unknown pair token: ask for a new pair")
        if pair[0] != voter:
            raise VoteRejected(403, "this pair was issued to another voter")
        if pair[1]:
            raise VoteRejected(409, "this pair has already been voted on")
        self._con.execute("UPDATE issued SET used = 1 WHERE nonce = ?", (nonce,))
        voted_at = _now()
        cursor = self._con.execute(
            "INSERT INTO votes (nonce, voter, voted_at, prompt_id, category, image_index, seed, model_left, "
            "model_right, sha256_left, sha256_right, choice) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (nonce, voter, voted_at, *pair[2:], choice),
        )
        return dict(zip(VOTE_COLUMNS, (cursor.lastrowid, voter, voted_at, *pair[2:], choice)))

    def pair_vote_counts(self) -> dict[tuple[str, int, str, str], int]:
        """Votes per (prompt, image index, model pair sorted): what pair choice spreads out."""
        with self._lock:
            rows = self._con.execute(
                "SELECT prompt_id, image_index, min(model_left, model_right), max(model_left, model_right), "
                "count(*) FROM votes GROUP BY 1, 2, 3, 4").fetchall()
        return {tuple(r[:4]): r[4] for r in rows}

    def votes(self) -> pl.DataFrame:
        with self._lock:
            return _votes_frame(self._con)


def _votes_frame(con: sqlite3.Connection) -> pl.DataFrame:
    rows = con.execute(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes ORDER BY vote_id").fetchall()
    return pl.DataFrame(rows, schema=VOTE_SCHEMA, orient="row")


def read_votes(path: Path) -> pl.DataFrame:
    """Every vote, read without writing (the asset's view); empty when nobody has voted yet."""
    if not Path(path).is_file():
        return pl.DataFrame(schema=VOTE_SCHEMA)
    con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        con.execute("PRAGMA busy_timeout=10000")
        return _votes_frame(con)
    finally:
        con.close()


def newest_vote_id(path: Path) -> int:
    """The id of the latest vote (0 before any): how a sensor tells that new votes arrived."""
    if not Path(path).is_file():
        return 0
    con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT coalesce(max(vote_id), 0) FROM votes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()
