import os
import time

from bench_assets.models.drop_folder import WatchState, decide
from bench_assets.models.registry import scan_models


def _tick(folder, state, now=None):
    decision = decide(scan_models(folder), state, now or time.time(), settle_seconds=10)
    return decision, WatchState.from_cursor(decision.state.to_cursor())


def _old(path):
    past = time.time() - 3600
    os.utime(path, (past, past))


def test_lifecycle_new_unchanged_touched_modified(tmp_path):
    model = tmp_path / "m.safetensors"
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    model.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    _old(model)
    first, state = _tick(tmp_path, WatchState())
    assert [(l.entry.key, l.reason) for l in first.launches] == [("m", "new")]
    second, state = _tick(tmp_path, state)
    assert second.launches == [] and second.waiting == []
    os.utime(model)  # touched, same bytes: no re-run, once it has settled
    touched, state = _tick(tmp_path, state, now=time.time() + 60)
    assert touched.launches == []
    model.write_bytes(len(header).to_bytes(8, "little") + header + b"\1\1\1\1")
    _old(model)
    changed, state = _tick(tmp_path, state)
    assert [(l.entry.key, l.reason) for l in changed.launches] == [("m", "changed")]


def test_file_still_being_copied_waits_until_stable(tmp_path):
    model = tmp_path / "big.safetensors"
    model.write_bytes(b"\0" * 10)
    decision, state = _tick(tmp_path, WatchState())
    assert decision.launches == [] and [e.key for e in decision.waiting] == ["big"]
    with model.open("ab") as handle:
        handle.write(b"\0" * 10)  # still growing
    decision, state = _tick(tmp_path, state)
    assert decision.launches == []
    decision, state = _tick(tmp_path, state)  # unchanged since last tick: stable
    assert [l.entry.key for l in decision.launches] == ["big"]


def test_sweep_resumes_at_its_cursor_key_and_wraps_round():
    from bench_assets.models.drop_folder import sweep_key, sweep_order

    parts = [("b", "x"), ("a", "y"), ("a", "x"), ("c", "x")]
    assert sweep_order(parts, "") == [("a", "x"), ("a", "y"), ("b", "x"), ("c", "x")]
    assert sweep_order(parts, sweep_key("b", "x")) == [("b", "x"), ("c", "x"), ("a", "x"), ("a", "y")]
    gone = [p for p in parts if p[0] != "b"]  # the model the sweep stopped at was removed: go on with the next
    assert sweep_order(gone, sweep_key("b", "x")) == [("c", "x"), ("a", "x"), ("a", "y")]
    assert sweep_order(parts, sweep_key("z", "x")) == sweep_order(parts, ""), "past the end: a new pass"
    state = WatchState(sweep=sweep_key("b", "x"))
    assert WatchState.from_cursor(state.to_cursor()).sweep == "b/x"
    assert WatchState.from_cursor('{"launched": {}, "pending": {}}').sweep == "", "a cursor from before the sweep"
