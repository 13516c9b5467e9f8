"""The one small interface every metric implements.

A metric declares who it is (``name``, ``table``, ``version``), what unit it
scores (one image, or the set of images of one prompt), and which scorer
weights it uses (``scorer_id``, stored in every row so that changing the
scorer recomputes). ``load`` happens once per step; ``score`` is called with
batches of :class:`ImageItem` and returns plain dict rows. A metric reads an
image only through ``item.load()``, so it never knows whether the image
store is a local folder or a bucket.

The runner (``bench_assets.metrics.runner``) adds the bookkeeping columns
(model, category, metric, version, image hash, ...); a metric returns only
what it measured, and describes the columns beyond ``value`` that a reader
should see (``extra_columns``: the report's "why" in its drill-down).

A metric also names its ``tiny_scorer``: random weights built in code, with
which ``bench demo`` and the tests run the metric's real code with no
download. With those, a metric class and one row in
``bench_assets.metrics.registry.METRICS`` is all a new metric is.
"""

from __future__ import annotations

import dataclasses
import io
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Literal, Sequence

from bench_assets.prompts.prompt import Prompt

if TYPE_CHECKING:
    from PIL import Image

    from bench_assets.core.objects import Store


@dataclass(frozen=True)
class TinyScorer:
    """A random-weight stand-in for a metric's scorer, built in code: how the demo and the tests score.

    ``build(root / folder)`` writes the weights and returns the metric's
    options that load them; with no ``folder`` the stand-in is options alone
    (``build()``, nothing written: LPIPS on a random backbone, MS-SSIM). Metrics
    whose ``TinyScorer`` are equal share one build (VQAScore, TIFA and DSG: one
    tiny VLM). Builders import torch and the like when called, never on import.
    """

    build: Callable[..., dict[str, Any]]
    folder: str | None = None

    def options(self, root: Path) -> dict[str, Any]:
        return self.build(Path(root) / self.folder) if self.folder else self.build()


ColumnFormat = Literal["text", "quote", "reason", "answers", "hidden"]


@dataclass(frozen=True)
class ExtraColumn:
    """A column a metric stores beside ``value``, and how the report's drill-down shows it.

    ``format``: ``text`` ("label: value"), ``quote`` ("label: “value”"),
    ``reason`` (one line per failed requirement, ``empty`` when none failed),
    ``answers`` (a JSON list of ``{question, predicted, answer, correct}``, as
    a table) or ``hidden`` (kept in the table, not shown). Columns a metric
    does not declare are shown as they are, after these.
    """

    name: str
    label: str = ""
    format: ColumnFormat = "text"
    empty: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "label": self.label or self.name, "format": self.format, "empty": self.empty}

    def example(self, index: int, passed: bool) -> Any:
        """A made-up value shaped as this column's format (None for a hidden column): see ``Metric.example_row``."""
        if self.format == "reason":
            return "" if passed else f"{self.name}: requirement {index % 3 + 1} not met"
        if self.format == "answers":
            return json.dumps([{"question": f"Is there a thing {index}?", "choices": ["yes", "no"], "answer": "yes",
                                "predicted": "yes" if passed else "no", "correct": passed}])
        return None if self.format == "hidden" else f"{self.name} {index}"


@dataclass(frozen=True)
class ImageItem:
    """One generated image as a metric sees it: its key in the image store it is read from.

    ``key`` is what score rows record as ``image_path``. With ``store`` None
    the key is a file path on this machine (a test's or a benchmark's loose
    files); everything else gives the image store.
    """

    model: str
    category: str
    prompt: Prompt
    index: int
    seed: int
    key: str
    sha256: str
    store: "Store | None" = dataclasses.field(default=None, compare=False, repr=False)

    def local_path(self) -> Path | None:
        """The image's file when it is on this machine's disk (read in place), else None."""
        return Path(self.key) if self.store is None else self.store.local_path(self.key)

    def read_bytes(self) -> bytes:
        path = self.local_path()
        return path.read_bytes() if path is not None else self.store.get_bytes(self.key)  # type: ignore[union-attr]

    def load(self) -> "Image.Image":
        """The image as RGB: the one way metrics read pixels, whatever the store."""
        from PIL import Image

        with Image.open(self.local_path() or io.BytesIO(self.read_bytes())) as img:
            return img.convert("RGB")

    def as_json(self) -> dict[str, Any]:
        """The item without its store, for a message to another process (which opens its own)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "store"}
        return {**data, "key": str(self.key), "prompt": dataclasses.asdict(self.prompt)}

    @classmethod
    def from_json(cls, data: dict[str, Any], store: "Store | None") -> "ImageItem":
        return cls(**{**data, "prompt": Prompt(**data["prompt"]), "store": store})


_PRECISION_ALIASES = {
    "fp32": "fp32", "float32": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
}
TORCH_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def scoring_precision(metric_name: str, dtype: str, device: str) -> str:
    """"fp32", "fp16" or "bf16" for a scorer: half precision only on CUDA,
    where CPU kernels for fp16/bf16 are slow or missing."""
    if dtype not in _PRECISION_ALIASES:
        raise ValueError(f"metric {metric_name}: unknown dtype {dtype!r}; known: {sorted(_PRECISION_ALIASES)}")
    return _PRECISION_ALIASES[dtype] if str(device).startswith("cuda") else "fp32"


def chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def group_by_prompt(items: Sequence[ImageItem]) -> dict[str, list[ImageItem]]:
    """The items of each prompt, ordered by image index: what a set metric scores."""
    groups: dict[str, list[ImageItem]] = {}
    for item in sorted(items, key=lambda i: (i.prompt.id, i.index)):
        groups.setdefault(item.prompt.id, []).append(item)
    return groups


def image_text_cosines(
    chunk: Sequence[ImageItem],
    encode_images: Callable[[Sequence[ImageItem]], Any],
    encode_texts: Callable[[list[str]], Any],
) -> list[float]:
    """Cosine of each image with its own prompt, for a dual encoder with normalised outputs.

    Each distinct prompt text is encoded once per chunk, however many of its images the chunk holds.
    """
    import torch

    image_features = encode_images(chunk)
    texts = list(dict.fromkeys(item.prompt.prompt for item in chunk))
    text_features = encode_texts(texts)
    which = torch.tensor([texts.index(item.prompt.prompt) for item in chunk], device=image_features.device)
    return (image_features * text_features[which]).sum(dim=-1).cpu().tolist()


def image_text_rows(
    items: Sequence[ImageItem],
    batch_size: int,
    encode_images: Callable[[Sequence[ImageItem]], Any],
    encode_texts: Callable[[list[str]], Any],
    value: Callable[[float], float],
) -> list[dict[str, Any]]:
    """One row per image of a dual-encoder metric: ``value(cosine)`` and the cosine itself."""
    import torch

    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for chunk in chunks(list(items), batch_size):
            for item, cosine in zip(chunk, image_text_cosines(chunk, encode_images, encode_texts)):
                rows.append({"prompt_id": item.prompt.id, "image_index": item.index, "value": value(cosine),
                             "cosine": cosine})
    return rows


def image_pairs(items: Sequence[ImageItem]) -> Iterator[tuple[str, list[ImageItem]]]:
    """(prompt id, its images in index order) for every prompt with at least one pair to compare."""
    for prompt_id, members in group_by_prompt(items).items():
        if len(members) >= 2:
            yield prompt_id, members


ROUND_OFF = 1e-6  # relative to the width of a range: far above float32 round-off, far below any real difference


def snap_to_range(value: float, value_range: tuple[float, float], tolerance: float = ROUND_OFF) -> float:
    """``value`` set to the end of ``value_range`` it lies within round-off of, else unchanged.

    Cosines of unit vectors normalised in float32 come out a few 1e-8 above 1
    (or just below it, depending on how the reduction was split over threads),
    so "1 - mean cosine" of identical images would read -6.6e-08 on one run and
    1e-8 on the next. Snapping both sides makes identical images exactly 0 on
    every machine; a value further outside its range is left as it is, so that
    the range check still catches a real bug.
    """
    low, high = value_range
    slack = tolerance * (high - low)
    if abs(value - low) <= slack:
        return low
    if abs(value - high) <= slack:
        return high
    return value


def mean_over_pairs(n: int, batch_size: int, device: Any, distance: Callable[[Any, Any], Any]) -> tuple[float, int]:
    """Mean of ``distance(i, j)`` over all i < j of ``n`` images, and the number of pairs.

    Pairs go to ``distance`` as two index tensors, ``batch_size`` pairs at a
    time, so a prompt with many images never builds all n² pairs at once.
    """
    import torch

    pairs = torch.combinations(torch.arange(n, device=device), r=2)
    total = 0.0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        total += distance(batch[:, 0], batch[:, 1]).double().sum().item()
    return total / len(pairs), len(pairs)


def _file_stamp(value: Any) -> str:
    if not isinstance(value, str) or "/" not in value:
        return ""
    path = Path(value)
    if not path.is_file():
        return ""
    stat = path.stat()
    return f"@{stat.st_size}:{stat.st_mtime_ns}"


def options_id(options: dict[str, Any], exempt: Sequence[str] = ()) -> str:
    """``key=value`` of every option not ``exempt``, sorted: the identity of a scorer's weights and options.

    An option naming a local file also records its size and mtime, so new
    weights saved over old ones at the same path are not mistaken for them.
    """
    return ",".join(f"{key}={options[key]}{_file_stamp(options[key])}" for key in sorted(options) if key not in exempt)


def checked_options(owner: str, defaults: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` over ``defaults``; an unknown key or a ``batch_size`` that is not a positive int raises."""
    unknown = set(options or {}) - set(defaults)
    if unknown:
        raise ValueError(f"{owner}: unknown option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    merged = {**defaults, **(options or {})}
    batch_size = merged.get("batch_size", 1)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int, got {batch_size!r}")
    return merged


class Metric(ABC):
    """Base class: subclasses set the class attributes and implement two methods."""

    name: ClassVar[str]
    table: ClassVar[str]
    version: ClassVar[str]
    unit: ClassVar[Literal["image", "prompt"]] = "image"
    higher_is_better: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = (float("-inf"), float("inf"))
    default_options: ClassVar[dict[str, Any]] = {}
    # Options that change speed, not values: changing them keeps cached rows.
    cache_exempt_options: ClassVar[tuple[str, ...]] = ("batch_size",)
    description: ClassVar[str] = ""
    # Prompt metadata keys the metric reads (e.g. ("objects",) or ("text",));
    # prompts without them are skipped and counted, never scored as zero.
    uses_metadata: ClassVar[tuple[str, ...]] = ()
    # What the report shows beside each value: the value's own name (e.g. "P(yes)") and the extra columns.
    value_label: ClassVar[str] = ""
    extra_columns: ClassVar[tuple[ExtraColumn, ...]] = ()
    # The random-weight scorer of the demo and the tests (every registered metric names one).
    tiny_scorer: ClassVar[TinyScorer | None] = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = checked_options(f"metric {self.name}", self.default_options, options)

    @classmethod
    def summary_columns(cls) -> dict[str, Any]:
        """Per-row polars expressions that the leaderboard sums per prompt.

        Together with :meth:`combine` this defines the metric's aggregate, so
        that a bootstrap can resample prompts and recompute it. Default: the
        mean of ``value``.
        """
        import polars as pl

        return {"value": pl.col("value"), "n": pl.lit(1.0)}

    @classmethod
    def combine(cls, totals: dict[str, Any]) -> Any:
        """The aggregate from summed columns (numpy arrays: one entry per resample)."""
        return totals["value"] / totals["n"]

    @classmethod
    def example_row(cls, index: int, draw: float) -> dict[str, Any]:
        """A made-up row (``value`` and extras) for a random ``draw`` in [0, 1], shaped as ``score`` returns it.

        The synthetic warehouse (report benchmark and tests) writes these, so
        every column that the report and the aggregate read is there; the default
        fills the declared ``extra_columns``. Override when the aggregate reads
        more (GenEval's task, the text metric's language).
        """
        passed = bool(draw >= 0.5)
        extras = {c.name: c.example(index, passed) for c in cls.extra_columns if c.format != "hidden"}
        return {"value": float(draw), **extras}

    @property
    def scorer_id(self) -> str:
        """Identity of the scorer weights and options; part of the cache key.

        An option naming a local file also records its size and mtime, so new
        weights saved over old ones at the same path are not mistaken for them.
        """
        return options_id(self.options, self.cache_exempt_options)

    def applies_to(self, prompt: Prompt) -> bool:
        """Whether this metric can score the prompt: it has every metadata key the metric uses."""
        return all(prompt.metadata.get(key) for key in self.uses_metadata)

    @abstractmethod
    def load(self, device: str, dtype: str = "fp32") -> None:
        """Load the scorer onto ``device``; called through :meth:`ensure_loaded`."""

    def ensure_loaded(self, device: str, dtype: str = "fp32") -> bool:
        """Load unless already loaded on (device, dtype); True when it really loaded.

        A worker keeps one metric instance across partitions, so a model's
        categories and a run's models share one load.
        """
        if getattr(self, "_loaded_on", None) == (device, dtype):
            return False
        self.unload()
        self._unloaded_state = set(vars(self))
        self.load(device, dtype)
        self._loaded_on = (device, dtype)
        return True

    def unload(self) -> None:
        """Forget everything ``load`` set (models, caches), so its memory can be freed."""
        keep = getattr(self, "_unloaded_state", None)
        if keep is None:
            return
        for name in set(vars(self)) - keep:
            delattr(self, name)
        self._loaded_on = None

    @abstractmethod
    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        """Score a batch.

        Image metrics return one row per item: ``{"prompt_id", "image_index",
        "value", ...extras}``. Prompt metrics receive every image of each prompt
        in the batch and return one row per prompt with ``image_index`` None.
        """


class PairwiseDiversity(Metric):
    """A set metric: the mean of a distance over every pair of a prompt's images (LPIPS, MS-SSIM).

    Subclasses have a ``size`` option, load into ``_device``, turn one image into a tensor
    (``_to_tensor``), the prompt's stacked images into what the distance reads
    (``_prepare``: features, or the images themselves), and the mean into the
    row's value and extras (``_summary``). One row per prompt with two or more images.
    """

    unit: ClassVar[Literal["image", "prompt"]] = "prompt"
    _device: str | None = None

    def _pixels(self, item: ImageItem) -> Any:
        """The image resized to ``size`` x ``size`` (bicubic) as a (3, H, W) float32 tensor in [0, 255]."""
        import numpy as np
        import torch
        from PIL import Image

        size = self.options["size"]
        image = item.load()
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)

    @abstractmethod
    def _to_tensor(self, item: ImageItem) -> Any:
        """One image as a (3, size, size) float tensor (``_pixels``, scaled as the distance wants)."""

    def _prepare(self, images: Any) -> Any:
        return images

    @abstractmethod
    def _distance(self, prepared: Any, first: Any, second: Any) -> Any:
        """The distance of each (first[i], second[i]) pair of image indices."""

    def _summary(self, mean: float) -> dict[str, Any]:
        """The row's ``value`` (and any extras) from the mean distance."""
        return {"value": mean}

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._device is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        rows: list[dict[str, Any]] = []
        with torch.inference_mode():
            for prompt_id, members in image_pairs(items):
                images = torch.stack([self._to_tensor(item) for item in members]).to(self._device)
                prepared = self._prepare(images)
                mean, n_pairs = mean_over_pairs(len(members), self.options["batch_size"], self._device,
                                                lambda a, b: self._distance(prepared, a, b))
                summary = self._summary(mean)
                rows.append({"prompt_id": prompt_id, "image_index": None, "value": summary.pop("value"),
                             "n_images": len(members), "n_pairs": n_pairs, **summary})
        return rows
