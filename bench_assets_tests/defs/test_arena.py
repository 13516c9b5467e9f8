"""The arena_ratings asset end to end: votes → Parquet → DuckDB views, ratings, agreement, human column."""

from __future__ import annotations

import dagster as dg
import pytest

from bench_assets.arena.app import open_arena
from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from dagster_helpers import materialization_metadata, query

# Tests sharing the session's `arena_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("arena_run")

FAVOURITE = "tiny-a"


def cast_votes(root, n: int) -> list[str]:
    """``n`` votes through the arena itself: the favourite wins 3 in 4 decisive votes, every 5th is a tie."""
    arena = open_arena(root)
    choices = []
    try:
        for i in range(n):
            token = arena.issue_pair("judge")["token"]
            issued = arena.store.issued(token.split(".")[0])
            favourite_side = "left" if issued.model_left == FAVOURITE else "right"
            other_side = "right" if favourite_side == "left" else "left"
            choice = "tie" if i % 5 == 4 else (other_side if i % 4 == 3 else favourite_side)
            arena.vote("judge", token, choice)
            choices.append(choice)
    finally:
        arena.store.close()
    return choices


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    with dg.build_sensor_context(instance_ref=instance.get_ref(), cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as ctx:
        return defs.resolve_sensor_def("arena_votes_sensor").evaluate_tick(ctx)


@pytest.fixture
def arena_defs(arena_run, tmp_path, monkeypatch):
    root = arena_run.fresh_root(tmp_path)
    monkeypatch.setenv("BENCH_DATA_DIR", str(root))
    return root, build_definitions(DataPaths(root))


def test_votes_become_ratings_agreement_and_a_human_column(arena_defs, instance):
    root, defs = arena_defs
    job = defs.resolve_job_def("refresh_arena")
    assert not tick(defs, instance, None).run_requests  # no votes, no run

    # before any vote: empty tables with their columns, and nulls in the leaderboard
    assert job.execute_in_process(instance=instance).success
    assert query(root, "select count(*) from arena_votes") == [(0,)]
    assert query(root, "select count(*), count(human_rating) from leaderboard") == [(4, 0)]

    cast_votes(root, 40)
    first = tick(defs, instance, None)
    assert len(first.run_requests) == 1 and first.cursor == "40"
    assert not tick(defs, instance, first.cursor).run_requests  # nothing new since

    result = job.execute_in_process(instance=instance)
    assert result.success
    assert materialization_metadata(result, "arena_ratings")["votes"] == 40
    assert query(root, "select count(*), count(distinct vote_id), count(*) filter (where winner is null) "
                       "from arena_votes") == [(40, 40, 8)]
    assert query(root, "select count(*) from arena_votes v join images i on v.sha256_left = i.sha256 "
                       "and v.model_left = i.model") == [(40,)]

    ratings = {m: (r, lo, hi, n) for m, r, lo, hi, n in query(
        root, "select model, rating, ci_low, ci_high, votes from arena_ratings where category = 'all'")}
    assert ratings[FAVOURITE][0] > ratings["tiny-b"][0]
    assert all(lo <= r <= hi and n == 40 for r, lo, hi, n in ratings.values())
    assert query(root, "select count(*) from arena_ratings where category = 'object'") == [(2,)]

    human = query(root, "select model, human_rating, human_ci_low, human_ci_high, human_votes from leaderboard "
                        "where category = 'all' order by model")
    assert [(m, r, lo, hi, n) for m, r, lo, hi, n in human] == [(m, *ratings[m]) for m in sorted(ratings)]

    agreement = query(root, "select metric, level, n, agreement between ci_low and ci_high from metric_agreement")
    assert agreement == [("clip_score", "image", 32, True)]  # decisive votes; both images scored by CLIP
