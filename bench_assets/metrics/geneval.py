"""GenEval-style object checks: does the image contain the prompt's objects, counts, colours, positions?

A port of GenEval (Ghosh et al. 2023, "GenEval: An Object-Focused Framework
for Evaluating Text-to-Image Alignment"), code ``djghosh13/geneval`` at commit
af4902f24d3ca90ebbb446dd9891a59e0f82725f. Every rule and number below comes
from ``evaluation/evaluate_images.py`` (EI), ``evaluation/summary_scores.py``
(SS) and ``prompts/create_prompts.py`` (CP) of that commit:

- Task of a prompt (CP): ``single_object`` (one object), ``two_object`` (two),
  ``counting`` (one object, count N in 2..4: "include count N" and
  "exclude count N+1", i.e. exactly N), ``colors`` (one object with a colour),
  ``position`` (object A with ``position: [rel, 0]`` relative to object B),
  ``color_attr`` (two objects, each with a colour). Here the task is chosen
  from the prompt's metadata: relations -> position; any count > 1 ->
  counting; colours on one object -> colors, on two or more -> color_attr;
  one object -> single_object; two or more -> two_object. Metadata richer
  than GenEval's (three objects, a colour on a counted object) is checked in
  full (every object, count, colour and relation must hold) and filed under
  that task.
- Detections kept per class (EI ``evaluate_image``): score > ``threshold``
  = 0.3 (EI ``THRESHOLD``, option ``threshold``), or > 0.9 for counting
  prompts (EI ``COUNTING_THRESHOLD``); sorted by score with EI's own
  ``np.argsort(scores)[::-1]`` (numpy's default, unstable sort reversed: equal
  scores come in exactly GenEval's order, which a stable best-first sort does
  not reproduce); at most 16 per class
  (EI ``MAX_OBJECTS``); greedy NMS with IoU >= ``max_overlap`` suppressed,
  where GenEval's default 1.0 disables it (EI ``NMS_THRESHOLD``); IoU with
  GenEval's ``+1`` pixel convention (EI ``compute_iou``).
- Rules (EI ``evaluate``): an "include" clause needs >= count detections of
  its class (the ``count`` most confident are checked further); colour: CLIP
  zero-shot over the crops must give the asked colour for all of them;
  position: every checked object must stand in the relation to every object
  of the target group; an "exclude" clause fails when >= count detections.
  Colour and position are judged on the most confident detections only.
- Position (EI ``relative_position``): with box centres c and sizes d,
  ``offset = c_A - c_B``; ``revised = max(|offset| - 0.1 (d_A + d_B), 0) *
  sign(offset)`` (c = 0.1 is EI ``POSITION_THRESHOLD``); no relation if both
  revised components are < 1e-3; else ``(dx, dy) = revised / ||offset||`` and
  "left of" if dx < -0.5, "right of" if dx > 0.5, "above" if dy < -0.5,
  "below" if dy > 0.5 (image y grows downwards).
- Colour (EI ``color_classification``/``ImageCrops``): colours ``red orange
  yellow green blue purple pink brown black white`` (EI ``COLORS``); CLIP
  ViT-L-14/openai (EI ``clip_arch``); class embedding = normalised mean of the
  normalised text embeddings of the templates "a photo of a {c} {object}",
  "a photo of a {c}-colored {object}", "a photo of a {c} object"
  (clip_benchmark ``zero_shot_classifier``); prediction = argmax of
  ``100 * normalise(E_image) @ classifier`` (clip_benchmark
  ``run_classification``). The image is the detection's box crop. GenEval
  first pastes the instance mask on a grey ``#999`` background; our default
  detector gives boxes, not masks, so the crop keeps its own background
  (GenEval's path when no mask is given). Boxes are clamped to the image for
  the crop (a crop needs at least one pixel).
- Overall score (SS): the mean over tasks of the per-task accuracy (fraction
  of images correct), see ``geneval_overall``.

Detector: ``google/owlv2-base-patch16-ensemble`` (OWLv2, open-vocabulary, in
transformers). GenEval uses Mask2Former over COCO's 80 classes, but prompt
suites here name objects outside COCO (tree, lamp, violin, ...) that a COCO
detector can never find; OWLv2 takes the object names as text queries
("a photo of a {name}", option ``query_template``, the form OWL-ViT was
trained on). Each box gets the query with the highest score (as
``post_process_object_detection`` does), score = sigmoid(logit). Caveat:
GenEval's 0.3/0.9 thresholds were tuned for Mask2Former's scores; OWLv2's
scores run lower, so the thresholds are options.

Row: ``value`` 1.0 (pass) or 0.0, ``task``, ``reason`` (GenEval's failure
text, "" on a pass), ``detected`` (JSON: class -> number of kept
detections), ``boxes`` (JSON: class -> [[x1, y1, x2, y2, score], ...]).

GenEval overall score from the warehouse (mean over tasks of per-task
accuracy), e.g. per model::

    SELECT model, avg(acc) AS geneval_overall, count(*) AS tasks
    FROM (SELECT model, task, avg(value) AS acc FROM scores_geneval GROUP BY model, task)
    GROUP BY model;
"""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar, Sequence

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.base import ExtraColumn, ImageItem, Metric, TinyScorer, chunks
from bench_assets.metrics.tiny.detector import build_tiny_geneval
from bench_assets.metrics.clip_score import ClipScore

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
COLOR_TEMPLATES = ["a photo of a {c} {classname}", "a photo of a {c}-colored {classname}", "a photo of a {c} object"]
TASKS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")

Box = Sequence[float]  # x1, y1, x2, y2[, score]


# --------------------------------------------------------------------------- pure rules


def geneval_overall(task_accuracies: dict[str, float]) -> float:
    """GenEval's overall score: the mean of the per-task accuracies (SS), over the six tasks.

    Raises if a task is missing: a mean over fewer tasks is not GenEval's number.
    """
    missing = [t for t in TASKS if t not in task_accuracies]
    if missing:
        raise ValueError(f"geneval_overall needs all six tasks; missing {missing}")
    return sum(float(task_accuracies[t]) for t in TASKS) / len(TASKS)


def compute_iou(box_a: Box, box_b: Box) -> float:
    """IoU with GenEval's inclusive-pixel (+1) convention (EI ``compute_iou``)."""

    def area(box: Sequence[float]) -> float:
        return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)

    inter = area([max(box_a[0], box_b[0]), max(box_a[1], box_b[1]), min(box_a[2], box_b[2]), min(box_a[3], box_b[3])])
    union = area(box_a) + area(box_b) - inter
    return inter / union if union else 0


def relative_position(box_a: Box, box_b: Box, position_threshold: float = 0.1) -> set[str]:
    """Relations of A relative to B, factoring in object sizes (EI ``relative_position``)."""
    import numpy as np

    boxes = np.array([list(box_a[:4]), list(box_b[:4])], dtype=np.float64).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - position_threshold * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _objects(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for obj in metadata.get("objects") or []:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"].strip():
            continue
        count = obj.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            continue
        colour = obj.get("colour", obj.get("color"))
        out.append({"name": obj["name"].strip(), "count": count, "colour": colour if colour in COLORS else None})
    return out


def geneval_spec(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """GenEval metadata (``tag``, ``include``, ``exclude``) for a prompt's metadata, or None if unusable.

    ``include`` clauses: ``{"class", "count", "color"?, "position"?: [relation, group index]}``;
    ``exclude`` clauses: ``{"class", "count"}`` (fails when >= count are found), as CP writes them.
    """
    objects = _objects(metadata)
    relations = [
        r
        for r in metadata.get("relations") or []
        if isinstance(r, dict)
        and r.get("relation") in RELATIONS
        and isinstance(r.get("subject"), str)
        and isinstance(r.get("object"), str)
    ]
    if not objects and not relations:
        return None
    include: list[dict[str, Any]] = []
    exclude: list[dict[str, Any]] = []
    counted = any(o["count"] > 1 for o in objects)
    for obj in objects:
        clause: dict[str, Any] = {"class": obj["name"], "count": obj["count"]}
        if obj["colour"]:
            clause["color"] = obj["colour"]
        include.append(clause)
        if counted:
            exclude.append({"class": obj["name"], "count": obj["count"] + 1})
    by_class = {o["name"]: o for o in objects}
    for rel in relations:
        # CP: the target B first (group index g), then A with position [relation, g].
        target = by_class.get(rel["object"], {"name": rel["object"], "count": 1})
        include.append({"class": target["name"], "count": target["count"]})
        subject = by_class.get(rel["subject"], {"name": rel["subject"], "count": 1})
        include.append(
            {"class": subject["name"], "count": subject["count"], "position": [rel["relation"], len(include) - 1]}
        )
    n_colours = sum(1 for o in objects if o["colour"])
    if relations:
        tag = "position"
    elif counted:
        tag = "counting"
    elif n_colours:
        tag = "colors" if len(objects) == 1 else "color_attr"
    elif len(objects) == 1:
        tag = "single_object"
    else:
        tag = "two_object"
    spec: dict[str, Any] = {"tag": tag, "include": include}
    if exclude:
        spec["exclude"] = exclude
    return spec


def keep_detections(
    detections: dict[str, list[Box]],
    threshold: float,
    max_objects: int = 16,
    max_overlap: float = 1.0,
) -> dict[str, list[list[float]]]:
    """GenEval's per-class filter (EI ``evaluate_image``): score > threshold, best first, cap, greedy NMS.

    ``detections``: class -> boxes ``[x1, y1, x2, y2, score]``. Classes with no
    kept box are left out, as in GenEval.
    """
    import numpy as np

    kept: dict[str, list[list[float]]] = {}
    for classname, boxes in detections.items():
        scores = np.array([float(box[4]) for box in boxes], dtype=np.float64)
        # EI's own ordering, ties included: numpy's default ascending argsort, reversed.
        ordering = [int(i) for i in np.argsort(scores)[::-1] if scores[i] > threshold][:max_objects]
        out = []
        while ordering:
            best = ordering.pop(0)
            out.append([float(v) for v in boxes[best]])
            ordering = [i for i in ordering if max_overlap == 1 or compute_iou(boxes[best], boxes[i]) < max_overlap]
        if out:
            kept[classname] = out
    return kept


ColourFn = Callable[[str, list[list[float]]], list[str]]


def evaluate(
    spec: dict[str, Any],
    objects: dict[str, list[list[float]]],
    classify_colors: ColourFn,
    position_threshold: float = 0.1,
) -> tuple[bool, str]:
    """GenEval's decision for one image (EI ``evaluate``), line for line.

    ``objects``: class -> kept boxes, most confident first. ``classify_colors(class, boxes)``
    returns one colour name per box.
    """
    correct = True
    reason: list[str] = []
    matched_groups: list[list[list[float]] | None] = []
    for req in spec.get("include", []):
        classname = req["class"]
        matched = True
        found = objects.get(classname, [])[: req["count"]]
        if len(found) < req["count"]:
            correct = matched = False
            reason.append(f"expected {classname}>={req['count']}, found {len(found)}")
        else:
            if "color" in req:
                colors = classify_colors(classname, found)
                if colors.count(req["color"]) < req["count"]:
                    correct = matched = False
                    reason.append(
                        f"expected {req['color']} {classname}>={req['count']}, found "
                        + f"{colors.count(req['color'])} {req['color']}; and "
                        + ", ".join(f"{colors.count(c)} {c}" for c in COLORS if c in colors)
                    )
            if "position" in req and matched:
                expected_rel, target_group = req["position"]
                if matched_groups[target_group] is None:
                    correct = matched = False
                    reason.append(f"no target for {classname} to be {expected_rel}")
                else:
                    for obj in found:
                        for target in matched_groups[target_group]:
                            true_rels = relative_position(obj, target, position_threshold)
                            if expected_rel not in true_rels:
                                correct = matched = False
                                reason.append(
                                    f"expected {classname} {expected_rel} target, found "
                                    + f"{' and '.join(true_rels)} target"
                                )
                                break
                        if not matched:
                            break
        matched_groups.append(found if matched else None)
    for req in spec.get("exclude", []):
        classname = req["class"]
        if len(objects.get(classname, [])) >= req["count"]:
            correct = False
            reason.append(f"expected {classname}<{req['count']}, found {len(objects[classname])}")
    return correct, "\n".join(reason)


def spec_classes(spec: dict[str, Any]) -> list[str]:
    """Classes a spec asks about, in first-mention order (the detector's text queries)."""
    names = [c["class"] for c in spec.get("include", [])] + [c["class"] for c in spec.get("exclude", [])]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- metric


class GenEval(Metric):
    name: ClassVar[str] = "geneval"
    table: ClassVar[str] = "scores_geneval"
    version: ClassVar[str] = "2"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "google/owlv2-base-patch16-ensemble",
        "query_template": "a photo of a {name}",
        "threshold": 0.3,
        "counting_threshold": 0.9,
        "max_objects": 16,
        "max_overlap": 1.0,
        "position_threshold": 0.1,
        "clip_model": "ViT-L-14",
        "clip_pretrained": "openai",
        "clip_config_file": None,
        "batch_size": 8,
    }
    description: ClassVar[str] = (
        "GenEval (Ghosh et al. 2023) object checks: 1 if an open-vocabulary detector (+ CLIP colour "
        "classification) finds the prompt's objects, counts, colours and positions, else 0; task per prompt."
    )
    uses_metadata: ClassVar[tuple[str, ...]] = ("objects",)
    tiny_scorer = TinyScorer(build_tiny_geneval, "tiny-geneval")
    extra_columns = (
        ExtraColumn("task"),
        ExtraColumn("reason", format="reason", empty="all requirements met"),
        ExtraColumn("boxes", format="hidden"),
    )

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        for key in ("threshold", "counting_threshold", "max_overlap", "position_threshold"):
            value = self.options[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"metric {self.name}: {key} must be a number in [0, 1], got {value!r}")
        if "{name}" not in str(self.options["query_template"]):
            raise ValueError(f"metric {self.name}: query_template must contain '{{name}}'")
        self._detector: Any = None
        self._processor: Any = None
        self._clip: Any = None
        self._device: str | None = None
        self._colour_classifiers: dict[str, Any] = {}

    @classmethod
    def example_row(cls, index: int, draw: float) -> dict[str, Any]:
        """Pass or fail (value 1 or 0) on one of the six tasks, with a reason when it fails."""
        passed = bool(draw > 0.5)
        reason = "" if passed else f"expected {index % 3 + 2} objects, found {index % 2}"
        return {"value": float(passed), "task": TASKS[index % len(TASKS)], "reason": reason}

    @classmethod
    def summary_columns(cls) -> dict[str, Any]:
        """Passes and attempts per task, so the leaderboard can average task accuracies."""
        import polars as pl

        columns = {}
        for task in TASKS:
            is_task = pl.col("task") == task
            columns[f"pass_{task}"] = pl.when(is_task).then(pl.col("value")).otherwise(0.0)
            columns[f"n_{task}"] = is_task.cast(pl.Float64)
        return columns

    @classmethod
    def combine(cls, totals: dict[str, Any]) -> Any:
        """Mean of the accuracies of the tasks present: GenEval's overall when all six are."""
        import warnings

        import numpy as np

        accuracies = np.vstack(
            [totals[f"pass_{t}"] / np.where(totals[f"n_{t}"] > 0, totals[f"n_{t}"], np.nan) for t in TASKS]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample may hold no task at all
            return np.nanmean(accuracies, axis=0)
    def applies_to(self, prompt: Prompt) -> bool:
        return geneval_spec(prompt.metadata) is not None

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        if self._detector is not None and self._device == str(device):
            return
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor


        # The detector runs in fp32: scores are compared with fixed thresholds.
        detector = AutoModelForZeroShotObjectDetection.from_pretrained(self.options["model"], use_safetensors=True)
        self._detector = detector.to(device).eval()
        self._processor = AutoProcessor.from_pretrained(self.options["model"])
        # CLIP for colours, loaded exactly as ClipScore loads it (QuickGELU for OpenAI tags, ...).
        clip = ClipScore(
            {
                "model": self.options["clip_model"],
                "pretrained": self.options["clip_pretrained"],
                "config_file": self.options["clip_config_file"],
            }
        )
        clip.load(device, "fp32")
        self._clip = clip
        self._device = str(device)
        self._colour_classifiers = {}

    # ------------------------------------------------------------- detector
    def detect(self, images: Sequence[Any], queries: Sequence[list[str]]) -> list[dict[str, Any]]:
        """Batched OWL detection: per image ``{"scores", "labels", "boxes"}`` for every predicted box.

        Equivalent to the processor's ``post_process_object_detection`` with
        threshold 0 run one image at a time with that image's queries (label =
        index into ``queries[i]``, boxes in pixels of the original image). The
        batch pads the query lists with all-zero token rows, which the model
        masks out (``query_mask = input_ids[..., 0] > 0``).
        """
        import torch

        n_max = max(len(q) for q in queries)
        flat = [text for q in queries for text in q]
        enc = self._processor(text=flat, images=list(images), return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        seq = ids.shape[1]
        all_ids = torch.zeros((len(queries), n_max, seq), dtype=ids.dtype)
        all_mask = torch.zeros((len(queries), n_max, seq), dtype=mask.dtype)
        all_mask[..., 0] = 1
        start = 0
        for i, q in enumerate(queries):
            all_ids[i, : len(q)] = ids[start : start + len(q)]
            all_mask[i, : len(q)] = mask[start : start + len(q)]
            start += len(q)
        outputs = self._detector(
            input_ids=all_ids.reshape(-1, seq).to(self._device),
            attention_mask=all_mask.reshape(-1, seq).to(self._device),
            pixel_values=enc["pixel_values"].to(self._device),
        )
        logits = outputs.logits.float()  # (batch, boxes, n_max); padded queries hold finfo.min
        best = logits.max(dim=-1)
        scores = torch.sigmoid(best.values)
        cx, cy, w, h = outputs.pred_boxes.float().unbind(-1)
        corners = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
        # OWLv2 pads images to a square (bottom/right), so boxes scale by the longer side.
        sides = torch.tensor([float(max(img.size)) for img in images], device=corners.device)
        corners = corners * sides[:, None, None]
        return [
            {"scores": scores[i].cpu(), "labels": best.indices[i].cpu(), "boxes": corners[i].cpu()}
            for i in range(len(queries))
        ]

    # --------------------------------------------------------------- colours
    def _colour_classifier(self, classname: str) -> Any:
        import torch.nn.functional as F

        if classname not in self._colour_classifiers:
            clip = self._clip
            columns = []
            for c in COLORS:
                texts = [t.format(c=c, classname=classname) for t in COLOR_TEMPLATES]
                emb = F.normalize(clip._encode_texts(texts), dim=-1).mean(dim=0)
                columns.append(emb / emb.norm())
            import torch

            self._colour_classifiers[classname] = torch.stack(columns, dim=1)
        return self._colour_classifiers[classname]

    def classify_colors(self, image: Any, classname: str, boxes: list[list[float]]) -> list[str]:
        """GenEval's CLIP zero-shot colour of each box crop."""
        import torch
        import torch.nn.functional as F

        clip = self._clip
        crops = [image.crop(_crop_box(box, image.size)) for box in boxes]
        pixels = torch.stack([clip._preprocess(crop) for crop in crops]).to(self._device)
        features = F.normalize(clip._model.encode_image(pixels).float(), dim=-1)
        logits = 100.0 * features @ self._colour_classifier(classname)
        return [COLORS[int(i)] for i in logits.argmax(dim=1).tolist()]

    # ----------------------------------------------------------------- score
    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._detector is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        rows: list[dict[str, Any]] = []
        usable = [(item, geneval_spec(item.prompt.metadata)) for item in items]
        usable = [(item, spec) for item, spec in usable if spec is not None]
        template = str(self.options["query_template"])
        with torch.inference_mode():
            for chunk in chunks(usable, self.options["batch_size"]):
                images = [item.load() for item, _ in chunk]
                classes = [spec_classes(spec) for _, spec in chunk]
                queries = [[template.replace("{name}", c) for c in cls] for cls in classes]
                detections = self.detect(images, queries)
                for (item, spec), image, cls, det in zip(chunk, images, classes, detections):
                    rows.append(self._judge(item, spec, image, cls, det))
        return rows

    def _judge(self, item: ImageItem, spec: dict[str, Any], image: Any, classes: list[str], det: dict) -> dict:
        by_class: dict[str, list[list[float]]] = {c: [] for c in classes}
        for score, label, box in zip(det["scores"].tolist(), det["labels"].tolist(), det["boxes"].tolist()):
            by_class[classes[label]].append([*box, score])
        threshold = self.options["counting_threshold"] if spec["tag"] == "counting" else self.options["threshold"]
        kept = keep_detections(by_class, float(threshold), int(self.options["max_objects"]), self.options["max_overlap"])
        correct, reason = evaluate(
            spec,
            kept,
            lambda classname, boxes: self.classify_colors(image, classname, boxes),
            float(self.options["position_threshold"]),
        )
        return {
            "prompt_id": item.prompt.id,
            "image_index": item.index,
            "value": 1.0 if correct else 0.0,
            "task": spec["tag"],
            "reason": reason,
            "detected": json.dumps({c: len(kept.get(c, [])) for c in classes}),
            "boxes": json.dumps({c: [[round(v, 3) for v in b] for b in boxes] for c, boxes in kept.items()}),
        }


def _crop_box(box: Sequence[float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    width, height = size
    x1 = min(max(float(box[0]), 0.0), width - 1.0)
    y1 = min(max(float(box[1]), 0.0), height - 1.0)
    x2 = min(max(float(box[2]), x1 + 1.0), float(width))
    y2 = min(max(float(box[3]), y1 + 1.0), float(height))
    return (x1, y1, x2, y2)
