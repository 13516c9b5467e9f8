"""Votes survive a kill -9 of the server: the real `bench arena` process, SIGKILLed mid-stream."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench_assets.arena.store import CHOICES, IssuedPair, VoteRejected, VoteStore, arena_db_path, read_votes
from bench_assets_tests.arena.http_client import ArenaClient

# Tests sharing the session's `arena_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("arena_run")

REPO = Path(__file__).resolve().parents[2]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "BENCH_DATA_DIR": str(root), "PYTHONPATH": str(REPO), "BENCH_ARENA_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-m", "bench_assets.cli", "arena", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "arena on http://127.0.0.1:PORT/ : ..." once it listens
    if not line.startswith("arena on "):
        proc.kill()
        raise AssertionError(f"server did not start: {line}{proc.stderr.read()}")
    assert "tok" not in line.replace("token required", ""), "the shared token is never printed"
    return proc, line.split()[2].rstrip("/")


def test_kill_minus_nine_loses_no_acknowledged_vote(arena_run, tmp_path):
    root = arena_run.fresh_root(tmp_path)
    proc, url = start_server(root)
    client = ArenaClient(url)
    assert client.join("kim", "tok").status == 200
    acknowledged: list[tuple[str, int, str]] = []  # (pair token, vote id, choice)
    enough = threading.Event()

    def vote_until_killed() -> None:
        k = 0
        while True:
            try:
                pair = client.pair()
                if pair.status != 200:
                    return
                token, choice = pair.json()["token"], CHOICES[k % 4]
                reply = client.vote(token, choice)
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            if reply.status == 200:
                acknowledged.append((token, reply.json()["vote_id"], choice))
            if len(acknowledged) >= 20:  # under the per-voter burst of 30: still voting at the kill
                enough.set()
            k += 1

    voter = threading.Thread(target=vote_until_killed)
    voter.start()
    assert enough.wait(120)
    proc.send_signal(signal.SIGKILL)  # while votes are still streaming in
    proc.wait()
    voter.join(30)

    proc, url = start_server(root)
    try:
        stored = read_votes(arena_db_path(root))
        by_id = {row["vote_id"]: row for row in stored.iter_rows(named=True)}
        for _, vote_id, choice in acknowledged:
            assert by_id[vote_id]["choice"] == choice and by_id[vote_id]["voter"] == "kim"
        # at most the one vote in flight at the kill was stored without its answer
        assert len(acknowledged) <= stored.height <= len(acknowledged) + 1
        assert stored["vote_id"].n_unique() == stored.height
        again = ArenaClient(url, session=client.session)  # the session survives the restart
        for token, _, choice in acknowledged[-5:]:
            assert again.vote(token, choice).status == 409, "a vote never counts twice"
        assert read_votes(arena_db_path(root)).height == stored.height
        assert again.vote(again.pair().json()["token"], "tie").status == 200
    finally:
        proc.kill()
        proc.wait()


def _pair(nonce: str, voter: str = "v") -> IssuedPair:
    return IssuedPair(nonce, voter, "p1", "object", 0, 0, "m-a", "m-b", "a" * 64, "b" * 64, "/x/a.png", "/x/b.png")


def test_store_uses_a_token_once_and_only_for_its_voter(tmp_path):
    store = VoteStore(arena_db_path(tmp_path))
    assert store._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.issue(_pair("n1"))
    with pytest.raises(VoteRejected) as other:
        store.record_vote("n1", "someone-else", "left")
    assert other.value.status == 403
    vote = store.record_vote("n1", "v", "right")
    assert (vote["model_left"], vote["sha256_right"], vote["choice"]) == ("m-a", "b" * 64, "right")
    with pytest.raises(VoteRejected) as reused:
        store.record_vote("n1", "v", "left")
    assert reused.value.status == 409
    with pytest.raises(VoteRejected) as unknown:
        store.record_vote("n2", "v", "left")
    assert unknown.value.status == 404
    store.close()
    votes = read_votes(arena_db_path(tmp_path))
    assert votes.select("voter", "prompt_id", "image_index", "model_left", "model_right", "choice").rows() == [
        ("v", "p1", 0, "m-a", "m-b", "right")]
    assert VoteStore(arena_db_path(tmp_path)).secret() == VoteStore(arena_db_path(tmp_path)).secret()
