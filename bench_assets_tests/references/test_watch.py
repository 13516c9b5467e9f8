"""The reference sensor's decisions: exactly the model × reference pairs whose inputs are new or changed."""

from __future__ import annotations

from bench_assets.references.watch import ReferenceWatch, decide_references


def test_new_changed_and_removed_sets_and_models():
    first = decide_references(ReferenceWatch(), {"coco": "f1", "shapes": "s1"}, {"a": "x"})
    assert first.requests == [("a", "coco"), ("a", "shapes")] and first.new_references == ["coco", "shapes"]
    state = ReferenceWatch.from_cursor(first.state.to_cursor())
    assert decide_references(state, {"coco": "f1", "shapes": "s1"}, {"a": "x"}).requests == []
    changed = decide_references(state, {"coco": "f1", "shapes": "s2"}, {"a": "x", "b": "y"})
    assert changed.requests == [("a", "shapes"), ("b", "coco"), ("b", "shapes")]  # changed set; new model × all
    gone = decide_references(changed.state, {"shapes": "s2"}, {"a": "x2", "b": "y"})
    assert gone.requests == [("a", "shapes")] and gone.removed_references == ["coco"]
