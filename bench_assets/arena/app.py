"""The arena as an ASGI app (Starlette): a static page and a small JSON API.

    GET  /                 the page (no data in it)
    GET  /api/session      who you are, whether a shared token is required
    POST /api/join         {name, token?} -> session cookie
    POST /api/pair         the next pair: prompt, a pair token, two image URLs
    POST /api/vote         {token, choice} -> stored, then the reveal
    GET  /image/<id>       one side of a pair issued to you, text chunks removed

Nothing the page receives before a vote names a model: the pair's contents
stay in the vote database, image ids are MACs, PNG text chunks are dropped.
Writes go through a thread pool (SQLite fsyncs must not stall the event
loop); errors are JSON ``{"error": ...}``, never a stack trace.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bench_assets.arena.pairs import PairPool, prompt_texts, usable_images
from bench_assets.arena.png import pixels_only
from bench_assets.arena.ratings import Comparisons, fit_strengths
from bench_assets.arena.store import CHOICES, IssuedPair, VoteRejected, VoteStore, arena_db_path
from bench_assets.arena.tokens import Signer
from bench_assets.core.config import load_config
from bench_assets.core.naming import recorded_image_key
from bench_assets.core.paths import DataPaths
from bench_assets.core.web import SecurityHeaders, json_body, json_error_handlers, json_response as _json
from bench_assets.core.objects import Store, StoreError
from bench_assets.storage.store import images_store
from bench_assets.storage.warehouse import Warehouse, open_warehouse

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "arena_session"
MAX_BODY = 4096
MAX_NAME = 40
REFIT_EVERY = 25  # votes between refits of the ratings that steer pair choice
RELOAD_SECONDS = 60.0  # how often the candidates are re-read from the warehouse


@dataclass(frozen=True)
class ArenaConfig:
    data_root: Path
    shared_token: str | None = None
    models: tuple[str, ...] = ()
    category: str | None = None
    suite_path: Path | None = None
    votes_per_minute: float = 60.0  # per voter, after a burst
    vote_burst: int = 30
    pairs_per_minute: float = 120.0
    pair_burst: int = 60


class RateLimiter:
    """A token bucket per (voter, action): a burst, then a steady rate."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: tuple[str, str], per_minute: float, burst: int) -> bool:
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (float(burst), now))
            level = min(float(burst), level + (now - last) * per_minute / 60.0)
            allowed = level >= 1.0
            self._buckets[key] = (level - 1.0 if allowed else level, now)
        return allowed


@dataclass
class Arena:
    """The server's state: votes, signer, candidate pairs, limits."""

    config: ArenaConfig
    store: VoteStore
    signer: Signer
    images: Store  # where the manifest's keys are (the data dir's images/ or a bucket)
    pool: PairPool
    prompts: dict[str, str]
    limiter: RateLimiter = field(default_factory=RateLimiter)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)
    _votes_since_refit: int = 0
    _loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def open(cls, config: ArenaConfig) -> "Arena":
        store = VoteStore(arena_db_path(config.data_root))
        paths = DataPaths(Path(config.data_root))
        images = images_store(paths, load_config(paths))
        arena = cls(config, store, Signer(store.secret(), config.shared_token), images,
                    PairPool(pl.DataFrame(), {}, images), {})
        arena.reload()
        return arena

    @property
    def warehouse(self) -> Warehouse:
        return open_warehouse(DataPaths(Path(self.config.data_root)))

    def reload(self) -> None:
        """Candidates from the manifest as it is now (images made while the arena runs join in)."""
        usable = usable_images(self.warehouse, self.images, self.config.models, self.config.category)
        pool = PairPool(usable, self.store.pair_vote_counts(), self.images)
        prompts = prompt_texts(self.warehouse, self.config.suite_path)
        with self._pool_lock:
            self.pool, self.prompts, self._loaded_at = pool, prompts, time.monotonic()
        self.refit()

    def refit(self) -> None:
        """Point ratings from every vote so far; they steer pair choice towards close models."""
        votes = self.store.votes()
        if votes.is_empty():
            return
        comparisons = Comparisons.from_votes(votes)
        theta = fit_strengths(comparisons, comparisons.count[None, :])[0]
        with self._pool_lock:
            self.pool.set_ratings(comparisons.models, theta)

    def issue_pair(self, voter: str) -> dict:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            self.reload()
        with self._pool_lock:
            candidate = self.pool.draw(voter)
        if candidate is None:
            raise HTTPException(503, "no pairs to vote on: the arena needs two models with images of the same "
                                     "prompt and seed (run the benchmark, check --models/--category)")
        left, right = (candidate.a, candidate.b) if random.SystemRandom().random() < 0.5 else (candidate.b, candidate.a)
        nonce = Signer.new_nonce()
        self.store.issue(IssuedPair(nonce, voter, candidate.prompt_id, candidate.category, candidate.image_index,
                                    candidate.seed, left.model, right.model, left.sha256, right.sha256,
                                    left.path, right.path))
        return {
            "token": self.signer.pair_token(nonce, voter),
            "prompt": self.prompts.get(candidate.prompt_id, candidate.prompt_id),
            "category": candidate.category,
            "left": f"/image/{self.signer.image_id(nonce, 'left')}",
            "right": f"/image/{self.signer.image_id(nonce, 'right')}",
        }

    def vote(self, voter: str, token: str, choice: str) -> dict:
        nonce = self.signer.open_pair_token(token, voter)
        if nonce is None:
            raise HTTPException(403, "this pair token was not issued to you")
        try:
            vote = self.store.record_vote(nonce, voter, choice)
        except VoteRejected as exc:
            raise HTTPException(exc.status, exc.message) from None
        key = (vote["prompt_id"], vote["image_index"], *sorted((vote["model_left"], vote["model_right"])))
        with self._pool_lock:
            self.pool.record(voter, key)
            self._votes_since_refit += 1
            refit = self._votes_since_refit >= REFIT_EVERY
            if refit:
                self._votes_since_refit = 0
        if refit:
            self.refit()
        return {"vote_id": vote["vote_id"], "choice": choice,
                "left": {"model": vote["model_left"]}, "right": {"model": vote["model_right"]}}

    def image(self, voter: str, image_id: str) -> bytes:
        opened = self.signer.open_image_id(image_id)
        pair = self.store.issued(opened[0]) if opened else None
        if pair is None or pair.voter != voter:
            raise HTTPException(404, "no such image")
        try:
            return pixels_only(self.images.get_bytes(recorded_image_key(pair.path(opened[1]))))
        except (OSError, StoreError):
            raise HTTPException(404, "image no longer in the image store") from None


def _voter(request: Request, arena: Arena) -> str:
    voter = arena.signer.open_session(request.cookies.get(SESSION_COOKIE))
    if voter is None:
        raise HTTPException(401, "join first: POST /api/join with your name" +
                            (" and the arena's token" if arena.config.shared_token else ""))
    return voter


def _limit(arena: Arena, voter: str, action: str) -> None:
    c = arena.config
    per_minute, burst = (c.votes_per_minute, c.vote_burst) if action == "vote" else (c.pairs_per_minute, c.pair_burst)
    if not arena.limiter.allow((voter, action), per_minute, burst):
        raise HTTPException(429, f"too many requests: at most {per_minute:g} per minute per voter after a burst "
                                 f"of {burst}")


def _clean_name(value: object) -> str:
    name = str(value or "").strip()
    if not (1 <= len(name) <= MAX_NAME) or not name.isprintable():
        raise HTTPException(400, f"name must be 1 to {MAX_NAME} printable characters")
    return name


def build_app(arena: Arena) -> Starlette:
    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def session(request: Request) -> Response:
        voter = arena.signer.open_session(request.cookies.get(SESSION_COOKIE))
        return _json({"voter": voter, "token_required": bool(arena.config.shared_token)})

    async def join(request: Request) -> Response:
        data = await json_body(request, MAX_BODY)
        name = _clean_name(data.get("name"))
        if arena.config.shared_token and not arena.signer.same_token(data.get("token"), arena.config.shared_token):
            raise HTTPException(401, "wrong or missing arena token")
        response = _json({"voter": name})
        response.set_cookie(SESSION_COOKIE, arena.signer.session(name), max_age=30 * 24 * 3600,
                            httponly=True, samesite="strict", path="/")
        return response

    async def pair(request: Request) -> Response:
        voter = _voter(request, arena)
        await json_body(request, MAX_BODY)
        _limit(arena, voter, "pair")
        return _json(await run_in_threadpool(arena.issue_pair, voter))

    async def vote(request: Request) -> Response:
        voter = _voter(request, arena)
        data = await json_body(request, MAX_BODY)
        if data.get("choice") not in CHOICES:
            raise HTTPException(400, f"choice must be one of {', '.join(CHOICES)}")
        if not isinstance(data.get("token"), str):
            raise HTTPException(400, "missing pair token")
        _limit(arena, voter, "vote")
        return _json(await run_in_threadpool(arena.vote, voter, data["token"], data["choice"]))

    async def image(request: Request) -> Response:
        voter = _voter(request, arena)
        data = await run_in_threadpool(arena.image, voter, request.path_params["image_id"])
        return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    routes = [
        Route("/", index),
        Route("/api/session", session),
        Route("/api/join", join, methods=["POST"]),
        Route("/api/pair", pair, methods=["POST"]),
        Route("/api/vote", vote, methods=["POST"]),
        Route("/image/{image_id}", image),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers=json_error_handlers("arena"))
    app.add_middleware(SecurityHeaders)
    return app


def open_arena(data_root: Path, shared_token: str | None = None, models: Sequence[str] = (),
               category: str | None = None, suite_path: Path | None = None, **limits) -> Arena:
    return Arena.open(ArenaConfig(Path(data_root), shared_token or None, tuple(models), category or None,
                                  suite_path, **limits))
