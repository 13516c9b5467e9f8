"""GenEval: the rules on hand-made detections, and the neural path against the libraries' own code.

A random detector finds nothing meaningful, so the decision rules (counting,
position margins, colour attribution, thresholds) are tested as pure
functions, including against GenEval's own ``relative_position`` and
``compute_iou`` copied verbatim below. The neural path (tiny random OWLv2 +
tiny open_clip saved to tmp_path, loaded through the metric's real code) is
tested for fidelity: batched detection equals the image processor's
``post_process_object_detection`` one image at a time, and colours equal a
hand-written CLIP zero-shot classifier.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.detector import build_tiny_geneval
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.geneval import (
    COLORS,
    TASKS,
    GenEval,
    compute_iou,
    evaluate,
    geneval_overall,
    geneval_spec,
    keep_detections,
    relative_position,
)


# --------------------------------------------------------------------------- GenEval's code, verbatim
# From djghosh13/geneval@af4902f, evaluation/evaluate_images.py (POSITION_THRESHOLD = 0.1).
POSITION_THRESHOLD = 0.1


def geneval_compute_iou(box_a, box_b):
    area_fn = lambda box: max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)  # noqa: E731
    i_area = area_fn([
        max(box_a[0], box_b[0]), max(box_a[1], box_b[1]),
        min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    ])
    u_area = area_fn(box_a) + area_fn(box_b) - i_area
    return i_area / u_area if u_area else 0


def geneval_relative_position(obj_a, obj_b):
    """Give position of A relative to B, factoring in object dimensions"""
    boxes = np.array([obj_a[0], obj_b[0]])[:, :4].reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    #
    revised_offset = np.maximum(np.abs(offset) - POSITION_THRESHOLD * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised_offset) < 1e-3):
        return set()
    #
    dx, dy = revised_offset / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5: relations.add("left of")  # noqa: E701
    if dx > 0.5: relations.add("right of")  # noqa: E701
    if dy < -0.5: relations.add("above")  # noqa: E701
    if dy > 0.5: relations.add("below")  # noqa: E701
    return relations


# --------------------------------------------------------------------------- pure rules


def test_geometry_matches_geneval_code() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        a = np.sort(rng.uniform(0, 100, size=(2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
        b = np.sort(rng.uniform(0, 100, size=(2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
        a, b = np.append(a, 0.9), np.append(b, 0.8)
        assert relative_position(a, b) == geneval_relative_position((a, None), (b, None))
        assert compute_iou(a, b) == pytest.approx(geneval_compute_iou(a, b), abs=1e-12)


def test_position_margin() -> None:
    """c = 0.1: centres must be apart by more than 0.1 * (sum of sizes) along the axis."""
    b = [40, 40, 60, 60]  # centre 50, size 20
    # A of size 20, centre 41: revised |offset| = 9 - 0.1 * 40 = 5; dx = -5 / 9 = -0.56 -> left of.
    assert relative_position([31, 40, 51, 60], b) == {"left of"}
    # centre 43: revised 7 - 4 = 3, dx = -3 / 7 = -0.43: not enough (the margin also scales dx down).
    assert relative_position([33, 40, 53, 60], b) == set()
    # centre 47: |offset| 3 < 4 -> revised offset 0, no relation at all.
    assert relative_position([37, 40, 57, 60], b) == set()
    # Diagonal: revised offset (-16, -16) / |(-20, -20)| = (-0.57, -0.57): left of and above.
    assert relative_position([20, 20, 40, 40], b) == {"left of", "above"}
    # Mostly vertical: dx = -6/|(-10, -30)| = -0.19, dy = -26/31.6 = -0.82 -> only above (y grows down).
    assert relative_position([30, 10, 50, 30], b) == {"above"}
    assert relative_position([40, 80, 60, 100], b) == {"below"}
    assert relative_position([40, 20, 60, 40], b, position_threshold=0.6) == set()


def _no_colours(classname, boxes):  # pragma: no cover - must not be called
    raise AssertionError("no colour asked")


def test_counting_exact_with_counting_threshold() -> None:
    spec = geneval_spec({"objects": [{"name": "apple", "count": 3}]})
    assert spec == {
        "tag": "counting",
        "include": [{"class": "apple", "count": 3}],
        "exclude": [{"class": "apple", "count": 4}],
    }
    boxes = [[10 * i, 0, 10 * i + 8, 8, s] for i, s in enumerate([0.99, 0.95, 0.92, 0.85, 0.5])]
    kept = keep_detections({"apple": boxes}, threshold=0.9)
    assert [b[4] for b in kept["apple"]] == [0.99, 0.95, 0.92]  # 0.85 is under the counting threshold
    assert evaluate(spec, kept, _no_colours) == (True, "")
    # With the plain 0.3 threshold the same detections are 4 apples: too many.
    too_many = keep_detections({"apple": boxes}, threshold=0.3)
    ok, reason = evaluate(spec, too_many, _no_colours)
    assert not ok and reason == "expected apple<4, found 5"
    ok, reason = evaluate(spec, {"apple": kept["apple"][:2]}, _no_colours)
    assert not ok and reason == "expected apple>=3, found 2"
    # Threshold is strict (> 0.9), as in GenEval.
    assert keep_detections({"apple": [[0, 0, 1, 1, 0.9]]}, threshold=0.9) == {}


def test_keep_detections_order_cap_and_nms() -> None:
    boxes = [[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.8], [50, 50, 60, 60, 0.7]]
    kept = keep_detections({"cat": boxes, "dog": [[0, 0, 1, 1, 0.1]]}, threshold=0.3)
    assert list(kept) == ["cat"]  # classes with nothing kept are dropped
    assert [b[4] for b in kept["cat"]] == [0.8, 0.7, 0.5]  # best first, no NMS at max_overlap 1.0
    nms = keep_detections({"cat": boxes}, threshold=0.3, max_overlap=0.5)
    assert [b[4] for b in nms["cat"]] == [0.8, 0.7]  # IoU((0,0,10,10),(1,1,11,11)) = 100/142 > 0.5
    assert len(keep_detections({"cat": boxes}, threshold=0.3, max_objects=1)["cat"]) == 1


def test_tie_order_is_genevals_argsort() -> None:
    """Equal scores: the kept order equals GenEval's np.argsort(scores)[::-1], cap included."""
    scores = [0.6, 0.8, 0.6, 0.8, 0.6, 0.2, 0.8]
    boxes = [[20 * i, 0, 20 * i + 10, 10, s] for i, s in enumerate(scores)]
    reference = [i for i in np.argsort(np.array(scores))[::-1] if scores[i] > 0.3]
    stable_best_first = sorted(range(len(scores)), key=lambda i: -scores[i])[:len(reference)]
    assert reference != stable_best_first, "the sample must tell GenEval's tie order from a stable sort"
    kept = keep_detections({"cup": boxes}, threshold=0.3)
    assert [b[0] for b in kept["cup"]] == [20.0 * i for i in reference]
    capped = keep_detections({"cup": boxes}, threshold=0.3, max_objects=2)
    assert [b[0] for b in capped["cup"]] == [20.0 * i for i in reference[:2]]  # which tied box survives the cap


def test_colour_attribution() -> None:
    spec = geneval_spec(
        {"objects": [{"name": "suitcase", "count": 1, "colour": "red"}, {"name": "backpack", "count": 1, "colour": "black"}]}
    )
    assert spec["tag"] == "color_attr"
    objects = {"suitcase": [[0, 0, 10, 10, 0.9]], "backpack": [[20, 0, 30, 10, 0.8]]}
    right = {"suitcase": ["red"], "backpack": ["black"]}
    swapped = {"suitcase": ["black"], "backpack": ["red"]}
    assert evaluate(spec, objects, lambda c, b: right[c]) == (True, "")
    ok, reason = evaluate(spec, objects, lambda c, b: swapped[c])
    assert not ok
    assert reason.splitlines() == [
        "expected red suitcase>=1, found 0 red; and 1 black",
        "expected black backpack>=1, found 0 black; and 1 red",
    ]
    # The colour is judged on the most confident detection only.
    spec1 = geneval_spec({"objects": [{"name": "car", "count": 1, "colour": "blue"}]})
    assert spec1["tag"] == "colors"
    seen = []
    evaluate(spec1, {"car": [[0, 0, 5, 5, 0.9], [9, 9, 20, 20, 0.4]]}, lambda c, b: seen.append(b) or ["blue"])
    assert seen == [[[0, 0, 5, 5, 0.9]]]


def test_position_rule_and_missing_target() -> None:
    meta = {
        "objects": [{"name": "cat", "count": 1}, {"name": "dog", "count": 1}],
        "relations": [{"subject": "cat", "relation": "left of", "object": "dog"}],
    }
    spec = geneval_spec(meta)
    assert spec["tag"] == "position"
    assert spec["include"][-2:] == [
        {"class": "dog", "count": 1},
        {"class": "cat", "count": 1, "position": ["left of", 2]},
    ]
    cat, dog = [0, 0, 10, 10, 0.9], [30, 0, 40, 10, 0.9]
    assert evaluate(spec, {"cat": [cat], "dog": [dog]}, _no_colours) == (True, "")
    ok, reason = evaluate(spec, {"cat": [dog], "dog": [cat]}, _no_colours)
    assert not ok and reason == "expected cat left of target, found right of target"
    ok, reason = evaluate(spec, {"cat": [cat]}, _no_colours)
    assert not ok and "no target for cat to be left of" in reason


def test_task_selection_and_skips() -> None:
    assert geneval_spec({"objects": [{"name": "person", "count": 1}]})["tag"] == "single_object"
    assert geneval_spec({"objects": [{"name": "cat", "count": 1}, {"name": "dog", "count": 1}]})["tag"] == "two_object"
    assert geneval_spec({"text": "OPEN"}) is None
    assert geneval_spec({"objects": []}) is None
    metric = GenEval()
    assert not metric.applies_to(Prompt(id="t", category="text", prompt="a sign", metadata={"text": "OPEN"}))
    assert metric.applies_to(Prompt(id="o", category="object", prompt="a cat", metadata={"objects": [{"name": "cat"}]}))


def test_overall_is_mean_of_six_tasks() -> None:
    acc = dict(zip(TASKS, [1.0, 0.5, 0.25, 0.75, 0.0, 0.5]))
    assert geneval_overall(acc) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="position"):
        geneval_overall({t: 1.0 for t in TASKS if t != "position"})


def test_options() -> None:
    assert GenEval.default_options["model"] == "google/owlv2-base-patch16-ensemble"
    assert GenEval.default_options["threshold"] == 0.3 and GenEval.default_options["counting_threshold"] == 0.9
    assert GenEval.default_options["position_threshold"] == 0.1 and GenEval.default_options["max_objects"] == 16
    assert GenEval.table == "scores_geneval" and GenEval.unit == "image"
    with pytest.raises(ValueError, match="threshold"):
        GenEval({"threshold": 2})
    with pytest.raises(ValueError, match="unknown option"):
        GenEval({"thresold": 0.2})


# --------------------------------------------------------------------------- neural path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_geneval(tmp_path_factory.mktemp("tiny_geneval"), seed=0)


@pytest.fixture(scope="module")
def metric(tiny: dict) -> GenEval:
    m = GenEval({**tiny, "batch_size": 3})
    m.load("cpu")
    return m


PROMPTS = [
    Prompt(id="obj-1", category="object", prompt="a cat", metadata={"objects": [{"name": "cat", "count": 1}]}),
    Prompt(
        id="col-1",
        category="colour",
        prompt="a red suitcase and a black backpack",
        metadata={"objects": [{"name": "suitcase", "colour": "red"}, {"name": "backpack", "colour": "black"}]},
    ),
    Prompt(id="cnt-1", category="counting", prompt="three apples", metadata={"objects": [{"name": "apple", "count": 3}]}),
    Prompt(id="txt-1", category="text", prompt="a sign", metadata={"text": "OPEN"}),
]


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("geneval_images")
    rng = np.random.default_rng(1)
    out = []
    for prompt in PROMPTS:
        for k, size in enumerate([(64, 64), (48, 80)]):
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out


def test_batched_detection_equals_post_process_one_at_a_time(metric: GenEval, items: list[ImageItem]) -> None:
    import torch

    images = [Image.open(i.key).convert("RGB") for i in items[:4]]
    queries = [["a photo of a cat"], ["a photo of a red car", "a photo of a dog", "a photo of a bench"], ["a photo of a x", "a photo of a y"], ["a photo of a cup"]]
    with torch.no_grad():
        ours = metric.detect(images, queries)
        for image, query, det in zip(images, queries, ours):
            inputs = metric._processor(text=[query], images=image, return_tensors="pt")
            outputs = metric._detector(**inputs)
            ref = metric._processor.image_processor.post_process_object_detection(
                outputs, threshold=0.0, target_sizes=[image.size[::-1]]
            )[0]
            keep = det["scores"] > 0.0
            assert torch.equal(ref["labels"], det["labels"][keep])
            assert torch.allclose(ref["scores"], det["scores"][keep], atol=1e-5, rtol=0)
            assert torch.allclose(ref["boxes"], det["boxes"][keep], atol=1e-4, rtol=0)
            assert int(det["labels"].max()) < len(query)  # padded queries never win


def test_colour_classifier_matches_hand_computed_clip(metric: GenEval, tiny: dict, items: list[ImageItem]) -> None:
    import open_clip
    import torch

    open_clip.add_model_config(tiny["clip_config_file"])
    model, _, preprocess = open_clip.create_model_and_transforms(tiny["clip_model"], pretrained=tiny["clip_pretrained"])
    model.eval()
    tokenizer = open_clip.get_tokenizer(tiny["clip_model"])
    image = Image.open(items[0].key).convert("RGB")
    boxes = [[0, 0, 32, 32, 0.9], [10.5, 20.0, 60.0, 50.0, 0.8], [40, 5, 64, 64, 0.7]]
    with torch.no_grad():
        columns = []
        for c in COLORS:
            texts = [f"a photo of a {c} suitcase", f"a photo of a {c}-colored suitcase", f"a photo of a {c} object"]
            emb = model.encode_text(tokenizer(texts)).double()
            emb = (emb / emb.norm(dim=-1, keepdim=True)).mean(dim=0)
            columns.append(emb / emb.norm())
        classifier = torch.stack(columns, dim=1)
        expected = []
        for box in boxes:
            feat = model.encode_image(preprocess(image.crop(tuple(box[:4]))).unsqueeze(0))[0].double()
            expected.append(COLORS[int((100 * feat / feat.norm() @ classifier).argmax())])
        assert metric.classify_colors(image, "suitcase", boxes) == expected


def test_rows_skip_and_batch_invariance(tiny: dict, items: list[ImageItem]) -> None:
    rows3 = GenEval({**tiny, "batch_size": 3, "threshold": 0.5})
    rows3.load("cpu")
    a = rows3.score(items)
    rows1 = GenEval({**tiny, "batch_size": 1, "threshold": 0.5})
    rows1.load("cpu")
    b = rows1.score(items)
    assert [(r["prompt_id"], r["image_index"]) for r in a] == [
        (i.prompt.id, i.index) for i in items if i.prompt.id != "txt-1"
    ]
    assert a == b
    tasks = {r["prompt_id"]: r["task"] for r in a}
    assert tasks == {"obj-1": "single_object", "col-1": "color_attr", "cnt-1": "counting"}
    for row in a:
        assert row["value"] in (0.0, 1.0)
        assert (row["value"] == 1.0) == (row["reason"] == "")
        assert set(json.loads(row["detected"])) <= {"cat", "suitcase", "backpack", "apple"}


def test_leaderboard_figure_is_the_mean_of_task_accuracies(tmp_path) -> None:
    """GenEval overall = mean of per-task accuracies, not the mean over images."""
    from bench_assets.storage.metric_columns import metric_columns
    from bench_assets.storage.leaderboard import compute_leaderboard
    from bench_assets.storage.warehouse import Warehouse

    wh = Warehouse(tmp_path)
    tasks = {"counting": [1, 1, 1, 0], "position": [0, 0]}  # accuracies 0.75 and 0.0
    rows = [
        {"model": "m", "category": "c", "prompt_id": f"{task}-{i}", "image_index": 0, "value": float(v), "task": task}
        for task, values in tasks.items()
        for i, v in enumerate(values)
    ]
    wh.write_partition("scores_geneval", "m", "c", rows)
    board = compute_leaderboard(wh, metric_columns([GenEval]))
    row = board.filter(board["category"] == "c").row(0, named=True)
    assert row["mean"] == pytest.approx((0.75 + 0.0) / 2)  # the image mean would be 0.5
    assert row["n"] == 6
    assert geneval_overall({t: 0.5 for t in TASKS}) == pytest.approx(0.5)
