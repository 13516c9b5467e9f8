"""The tagger: GenEval's own detector and colour classifier name the objects of an image, with counts and colours.

It runs GenEval's code path (``metrics/geneval.py``) with a whole
vocabulary as the text queries instead of one prompt's classes: the OWLv2
detector (``GenEval.detect``), GenEval's per-class filter
(``keep_detections``: score above a threshold, best first, at most
``max_objects``, greedy NMS) and its CLIP colour classification of the box
crops (``GenEval.classify_colors``). The default vocabulary is COCO's 80
classes as GenEval's ``object_names.txt`` names them (``VOCABULARIES``).

Counts follow GenEval's two thresholds, so a proposal asks what GenEval
will check: a prompt with a count above one is a counting task, judged on
detections above ``counting_threshold`` (0.9), every other prompt on those
above ``threshold`` (0.3). Hence:

- if some class has two or more detections above ``counting_threshold``,
  the proposal is a counting one: its objects are the classes with a
  detection above ``counting_threshold``, each counted as those detections;
- otherwise its objects are the classes with a detection above
  ``threshold``, one each.

A colour is proposed for an object when GenEval's classifier gives the same
colour to each of the detections it would check (the ``count`` most
confident), and none otherwise. GenEval's default ``max_overlap`` is 1.0
(no NMS: Mask2Former's instances do not overlap); OWLv2 returns many
overlapping boxes per object, so the tagger suppresses boxes overlapping a
better one by IoU 0.5 or more before counting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from bench_assets.metrics.geneval import GenEval, keep_detections
from bench_assets.metrics.proposers.base import ProposedObject, Proposer

if TYPE_CHECKING:
    from PIL import Image

COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
# Named vocabularies the ``vocabulary`` option may name (a list of names is taken as it is).
VOCABULARIES: dict[str, tuple[str, ...]] = {"coco80": COCO80}
# GenEval's options the tagger passes on to the GenEval instance it runs (``position_threshold`` is unused).
_GENEVAL_KEYS = tuple(key for key in GenEval.default_options if key != "position_threshold")
NMS_OVERLAP = 0.5


def vocabulary_names(vocabulary: str | Sequence[str]) -> tuple[str, ...]:
    """The class names of a ``vocabulary`` option: a ``VOCABULARIES`` key or a list of names."""
    if isinstance(vocabulary, str):
        if vocabulary not in VOCABULARIES:
            raise ValueError(f"unknown vocabulary {vocabulary!r}; known: {sorted(VOCABULARIES)} or a list of names")
        return VOCABULARIES[vocabulary]
    names = tuple(dict.fromkeys(str(name).strip() for name in vocabulary if str(name).strip()))
    if not names:
        raise ValueError("the vocabulary names no class")
    return names


def counted_detections(
    by_class: dict[str, list[list[float]]], threshold: float, counting_threshold: float, max_objects: int,
    max_overlap: float,
) -> tuple[dict[str, list[list[float]]], bool]:
    """(class -> kept boxes, most confident first, whether they are counted): GenEval's filter at the
    threshold its task will be judged at (see the module's docstring)."""
    strict = keep_detections(by_class, counting_threshold, max_objects, max_overlap)
    if any(len(boxes) >= 2 for boxes in strict.values()):
        return strict, True
    return keep_detections(by_class, threshold, max_objects, max_overlap), False


def agreed_colour(colours: list[str]) -> str | None:
    """The colour every checked detection has, or None when they differ (GenEval checks them all)."""
    return colours[0] if colours and len(set(colours)) == 1 else None


class OwlTagger(Proposer[list[ProposedObject]]):
    """Objects, counts and colours per image, from GenEval's OWLv2 detector and CLIP colour classifier."""

    name: ClassVar[str] = "tagger"
    version: ClassVar[str] = "1"
    default_options: ClassVar[dict[str, Any]] = {
        **{key: GenEval.default_options[key] for key in _GENEVAL_KEYS},
        "max_overlap": NMS_OVERLAP,
        "vocabulary": "coco80",
        "colours": True,
    }
    description: ClassVar[str] = (
        "Objects with counts and colours: GenEval's OWLv2 over a vocabulary (COCO-80), its thresholds, "
        "NMS and CLIP colour classification."
    )
    tiny_scorer = GenEval.tiny_scorer
    borrows_from: ClassVar[str] = "geneval"
    borrowed_options: ClassVar[tuple[str, ...]] = (
        "model", "query_template", "threshold", "counting_threshold", "max_objects",
        "clip_model", "clip_pretrained", "clip_config_file",
    )

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.vocabulary = vocabulary_names(self.options["vocabulary"])
        # GenEval checks the detector's options (thresholds in [0, 1], the query template) and loads it.
        self._geneval = GenEval({key: self.options[key] for key in _GENEVAL_KEYS})

    def load(self, device: str, dtype: str = "fp32") -> None:
        self._geneval.load(device, dtype)

    def _propose(self, images: list["Image.Image"]) -> list[list[ProposedObject]]:
        template = str(self.options["query_template"])
        queries = [template.replace("{name}", name) for name in self.vocabulary]
        size = self.options["batch_size"]
        out: list[list[ProposedObject]] = []
        for start in range(0, len(images), size):
            batch = images[start:start + size]
            for image, det in zip(batch, self._detect(batch, queries)):
                out.append(self._objects(image, det))
        return out

    def _detect(self, images: list["Image.Image"], queries: list[str]) -> list[dict[str, Any]]:
        import torch

        with torch.inference_mode():
            return self._geneval.detect(images, [queries] * len(images))

    def _objects(self, image: "Image.Image", det: dict[str, Any]) -> list[ProposedObject]:
        """One image's objects, in vocabulary order."""
        by_class: dict[str, list[list[float]]] = {name: [] for name in self.vocabulary}
        for score, label, box in zip(det["scores"].tolist(), det["labels"].tolist(), det["boxes"].tolist()):
            by_class[self.vocabulary[label]].append([*box, score])
        options = self.options
        kept, counted = counted_detections(by_class, float(options["threshold"]), float(options["counting_threshold"]),
                                           int(options["max_objects"]), float(options["max_overlap"]))
        objects = []
        for name in self.vocabulary:
            if name not in kept:
                continue
            count = len(kept[name]) if counted else 1
            objects.append(ProposedObject(name, count, self._colour(image, name, kept[name][:count])))
        return objects

    def _colour(self, image: "Image.Image", name: str, boxes: list[list[float]]) -> str | None:
        if not self.options["colours"]:
            return None
        import torch

        with torch.inference_mode():
            return agreed_colour(self._geneval.classify_colors(image, name, boxes))
