"""The arena's HTTP surface on a real uvicorn server: forged votes, traversal, concurrency, limits."""

from __future__ import annotations

import threading

import duckdb
import polars as pl
import pytest

from bench_assets.arena.app import open_arena
from bench_assets.arena.server import ServerThread
from bench_assets.arena.store import read_votes, arena_db_path
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.arena.http_client import ArenaClient
from bench_assets_tests.arena.small_run import MODELS

# Tests sharing the session's `arena_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("arena_run")

TOKEN = "correct horse battery staple"
VOTE_BURST = 30


@pytest.fixture(scope="module")
def server(arena_run, tmp_path_factory):
    """One arena with a shared token; votes refill so slowly that the burst is the whole budget."""
    root = arena_run.fresh_root(tmp_path_factory.mktemp("arena_app"))
    arena = open_arena(root, shared_token=TOKEN, vote_burst=VOTE_BURST, votes_per_minute=0.001)
    with ServerThread(arena) as url:
        yield url, root
    arena.store.close()


def joined(url: str, name: str) -> ArenaClient:
    client = ArenaClient(url)
    assert client.join(name, TOKEN).status == 200
    return client


def tampered(text: str) -> str:
    return text[:-1] + ("1" if text[-1] == "0" else "0")


def assert_json_error(reply, status: int) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    assert "error" in reply.json() and b"Traceback" not in reply.body and b"File \"" not in reply.body


def test_forged_reused_and_unauthorised_votes_are_rejected(server):
    url, root = server
    assert_json_error(ArenaClient(url).join("mallory"), 401)
    assert_json_error(ArenaClient(url).join("mallory", "wrong token"), 401)
    assert_json_error(ArenaClient(url).pair(), 401)
    alice, bob = joined(url, "alice"), joined(url, "bob")
    token = alice.pair().json()["token"]

    assert_json_error(alice.vote("0" * 32 + ".0123456789abcdef0123456789abcdef", "left"), 403)  # unknown
    assert_json_error(alice.vote(tampered(token), "left"), 403)  # tampered
    assert_json_error(bob.vote(token, "left"), 403)  # another voter's pair
    assert_json_error(ArenaClient(url).vote(token, "left"), 401)  # no session at all
    forged_session = ArenaClient(url, session=alice.session.split(".")[0] + ".00")
    assert_json_error(forged_session.vote(token, "left"), 401)
    assert_json_error(alice.vote(token, "best"), 400)
    assert_json_error(alice.request("GET", f"/api/vote?token={token}&choice=left"), 405)
    assert_json_error(alice.request("POST", "/api/vote", raw=b"token=x&choice=left",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_json_error(alice.request("POST", "/api/vote", raw=b"{not json", headers={"Content-Type": "application/json"}), 400)

    first = alice.vote(token, "left")
    assert first.status == 200 and {first.json()["left"]["model"], first.json()["right"]["model"]} == set(MODELS)
    assert_json_error(alice.vote(token, "right"), 409)  # one use
    votes = read_votes(arena_db_path(root)).filter(pl.col("voter").is_in(["alice", "bob", "mallory"]))
    assert votes.height == 1 and votes["choice"].to_list() == ["left"]


def test_session_cookie_is_httponly_and_strict(server):
    url, _ = server
    client = ArenaClient(url)
    cookie = client.join("carol", TOKEN).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert TOKEN.lower() not in cookie and "carol" not in cookie


def test_images_only_by_opaque_id_never_by_path(server, arena_run):
    url, _ = server
    dave, erin = joined(url, "dave"), joined(url, "erin")
    pair = dave.pair().json()
    image = dave.request("GET", pair["left"])
    assert image.status == 200 and image.headers["content-type"] == "image/png"
    assert image.body.startswith(b"\x89PNG") and b"bench_assets" not in image.body
    assert all(m.encode() not in image.body for m in MODELS)
    assert_json_error(erin.request("GET", pair["left"]), 404)  # issued to dave, not erin

    real_file = Warehouse(arena_run.data / "warehouse").read_table("images")["path"][0]
    for path in ("/image/../../../../etc/passwd", "/image/..%2F..%2F..%2Fetc%2Fpasswd", "/image//etc/passwd",
                 f"/image/{real_file}", f"/image/{real_file.replace('/', '%2F')}", "/image/..",
                 "/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/../store.py", "/static/%2e%2e/store.py",
                 tampered(pair["left"])):
        reply = dave.request("GET", path)
        assert reply.status == 404, (path, reply.status)
        assert b"root:" not in reply.body and b"sqlite" not in reply.body.lower()


def test_nothing_before_the_vote_names_a_model(server):
    url, _ = server
    frank = joined(url, "frank")
    before = [frank.request("GET", "/"), frank.request("GET", "/static/arena.js"), frank.request("GET", "/api/session")]
    pair = frank.pair()
    before += [pair, frank.request("GET", pair.json()["left"]), frank.request("GET", pair.json()["right"])]
    for reply in before:
        assert reply.status == 200
        assert all(m.encode() not in reply.body for m in MODELS)
        assert all(m not in str(reply.headers) for m in MODELS)
    reveal = frank.vote(pair.json()["token"], "tie").json()
    assert {reveal["left"]["model"], reveal["right"]["model"]} == set(MODELS)


def test_twenty_concurrent_voters_post_500_votes_and_lose_none(server):
    url, root = server
    acknowledged: dict[str, list[dict]] = {}
    errors: list[str] = []

    def voter(i: int) -> None:
        name = f"crowd-{i:02d}"
        client = joined(url, name)
        mine = acknowledged.setdefault(name, [])
        for k in range(25):
            pair = client.pair()
            choice = ("left", "right", "tie", "both_bad")[(i + k) % 4]
            reply = client.vote(pair.json()["token"], choice)
            if reply.status != 200:
                errors.append(f"{name}: {reply.status} {reply.body!r}")
                return
            mine.append({"vote_id": reply.json()["vote_id"], "choice": choice,
                         "model_left": reply.json()["left"]["model"]})

    threads = [threading.Thread(target=voter, args=(i,)) for i in range(20)]
    sql_user = duckdb.connect(str(root / "bench.duckdb"))  # a user's open read-write SQL session: blocks nothing
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sql_user.close()
    assert not errors
    stored = read_votes(arena_db_path(root)).filter(pl.col("voter").str.starts_with("crowd-"))
    assert stored.height == 500 == sum(len(v) for v in acknowledged.values())
    expected = {(name, v["vote_id"], v["choice"], v["model_left"]) for name, votes in acknowledged.items() for v in votes}
    assert set(stored.select("voter", "vote_id", "choice", "model_left").iter_rows()) == expected


def test_votes_are_rate_limited_per_voter(server):
    url, _ = server
    greedy, patient = joined(url, "greedy"), joined(url, "patient")
    for _ in range(VOTE_BURST):  # forged tokens still spend the budget: no brute force
        assert greedy.vote("0" * 32 + ".00", "left").status == 403
    assert_json_error(greedy.vote("0" * 32 + ".00", "left"), 429)
    pair = patient.pair().json()
    assert patient.vote(pair["token"], "left").status == 200  # another voter is not slowed down


def test_images_made_while_the_arena_runs_join_in(arena_run, tmp_path, monkeypatch):
    import shutil

    from bench_assets.arena import app as app_module
    from starlette.exceptions import HTTPException

    root = arena_run.fresh_root(tmp_path)
    held = tmp_path / "held"
    shutil.move(root / "warehouse" / "images" / MODELS[1], held)  # as if tiny-b were not made yet
    arena = open_arena(root)
    with pytest.raises(HTTPException) as nothing:
        arena.issue_pair("early")
    assert nothing.value.status_code == 503 and "two models" in nothing.value.detail
    shutil.move(held, root / "warehouse" / "images" / MODELS[1])
    monkeypatch.setattr(app_module, "RELOAD_SECONDS", 0.0)  # the minute has passed
    assert arena.issue_pair("early")["token"] and len(arena.pool) == 8
    arena.store.close()


def test_an_internal_failure_is_a_json_500_without_a_stack_trace(arena_run, tmp_path):
    arena = open_arena(arena_run.fresh_root(tmp_path))
    arena.store.close()  # the vote database is gone from under the server
    with ServerThread(arena) as url:
        client = ArenaClient(url)
        assert client.join("olga").status == 200  # joining needs no database
        reply = client.pair()
    assert_json_error(reply, 500)
    assert b"sqlite" not in reply.body.lower() and b".py" not in reply.body
