"""`bench compare` / `bench gate` on the distribution metrics: MOVER intervals, equal-n only, FID gates."""

from __future__ import annotations

import math

import pytest

from bench_assets.cli import main
from bench_assets.storage import distribution_compare as dc
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.storage.distribution_fixtures import frame, score_row, write_rows


def test_mover_is_the_normal_interval_for_symmetric_ones_and_keeps_skew():
    low, high = dc.mover_interval(20.0, 18.0, 22.0, 10.0, 9.0, 11.0)
    assert (low, high) == pytest.approx((10 - math.hypot(2, 1), 10 + math.hypot(2, 1)))
    # a right-skewed interval of A widens the upper side of A − B only
    low, high = dc.mover_interval(20.0, 19.0, 25.0, 10.0, 9.0, 11.0)
    assert (10 - low, high - 10) == pytest.approx((math.hypot(1, 1), math.hypot(5, 1)))


def test_split_names_keeps_per_item_and_distribution_metrics_apart():
    assert dc.split_names(None) == (None, None)
    assert dc.split_names(["clip_score", "fid"]) == (["clip_score"], ["fid"])
    assert dc.split_names(["fid"]) == ([], ["fid"]), "no per-item metric: [] means none, not all"


def test_worse_in_each_direction_and_unequal_n_never_compares():
    a = frame([score_row("a", "fid", 20.0), score_row("a", "precision", 0.5, 0.05),
                score_row("a", "kid", 0.02, 0.01), score_row("a", "cmmd", 1.0, n=128)])
    b = frame([score_row("b", "fid", 10.0), score_row("b", "precision", 0.9, 0.05),
                score_row("b", "kid", 0.015, 0.01), score_row("b", "cmmd", 3.0)])
    rows = {r["metric"]: r for r in dc.compare_distribution(a, b, ("a", "b")).iter_rows(named=True)}
    assert rows["fid"]["worse"] == "a" and rows["fid"]["diff"] == 10.0, "higher FID is worse"
    assert rows["precision"]["worse"] == "a", "lower precision is worse"
    assert rows["kid"]["worse"] is None, "overlapping intervals: no verdict"
    assert rows["cmmd"]["worse"] is None and "compare only at equal n (128 vs 64)" in rows["cmmd"]["not_comparable"]
    assert dc.regressions(dc.compare_distribution(a, b, ("a", "b")))["metric"].to_list() == ["fid"]
    assert dc.regressions(dc.compare_distribution(b, a, ("b", "a"))).is_empty(), "the better one passes"


def test_gate_fails_on_a_significantly_worse_fid_and_compare_prints_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    write_rows(Warehouse(tmp_path / "data" / "warehouse"),
               [score_row("new", "fid", 30.0, 2.0), score_row("old", "fid", 20.0, 2.0),
                score_row("new", "recall", 0.4, 0.2), score_row("old", "recall", 0.5, 0.2)])
    assert main(["gate", "--candidate", "new", "--baseline", "old"]) == 1
    out = capsys.readouterr().out
    assert "FAIL fid vs reference 'ref': new − old = +10 [95% CI +7.172, +12.83] (n=64/64)" in out
    assert "FAIL recall" not in out, "only FID gates"
    assert main(["gate", "--candidate", "old", "--baseline", "new"]) == 0 and "gate: PASS" in capsys.readouterr().out
    # naming only distribution metrics gates on them alone (recall's interval here includes 0: a pass)
    assert main(["gate", "--candidate", "new", "--baseline", "old", "--metrics", "recall"]) == 0
    out = capsys.readouterr().out
    assert "| recall ↑ |" in out and "fid" not in out and "no matched items" not in out
    assert main(["compare", "new", "old"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| recall")]
    assert lines == ["| recall ↑ | ref | all | new 0.4 | old 0.5 | -0.1 [-0.3828, +0.1828] | 64/64 | – |"]
