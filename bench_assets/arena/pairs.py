"""Which two images a voter sees next.

Candidates come from the warehouse's ``images`` manifest: for one prompt and
one seed index, every two *different* models that both have the image, with
no recorded generation failure for either and both files in the image store
(checked again, with their sha256, when the pair is issued, so a vote always
names the bytes the voter saw). Images are addressed by their keys in the
image store, a local folder or a bucket alike.

Choice: each candidate is drawn with weight

    info(a, b) / (1 + votes on this pair) / (1 + 4 · this voter's votes on it)

where info = 4·p·(1 − p) with p = P(a beats b) under the current ratings
(1 for two models rated alike, towards 0 for a lopsided pair; floored at
0.05 so no pair is starved). Fresh pairs and close models come first, a
voter rarely sees a pair twice, and every pair stays possible.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from bench_assets.prompts.prompt import PromptSuiteError

from bench_assets.prompts.suites import load_suite
from bench_assets.core.objects import Store
from bench_assets.storage.results import image_keys
from bench_assets.storage.status import FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

MIN_INFO = 0.05
VOTER_REPEAT_PENALTY = 4.0
PairKey = tuple[str, int, str, str]  # prompt id, image index, model a, model b (a < b)


@dataclass(frozen=True)
class ArenaImage:
    model: str
    path: str  # the image's key in the image store
    sha256: str

    def intact(self, images: Store) -> bool:
        """The stored bytes are still the ones the manifest recorded."""
        try:
            return hashlib.sha256(images.get_bytes(self.path)).hexdigest() == self.sha256
        except OSError:
            return False


@dataclass(frozen=True)
class Candidate:
    """Two models' images of one prompt at one seed index (models in name order)."""

    prompt_id: str
    category: str
    image_index: int
    seed: int | None
    a: ArenaImage
    b: ArenaImage

    @property
    def key(self) -> PairKey:
        return (self.prompt_id, self.image_index, self.a.model, self.b.model)

    def intact(self, images: Store) -> bool:
        """Both images still exist with the bytes the manifest recorded."""
        return self.a.intact(images) and self.b.intact(images)


def usable_images(warehouse: Warehouse, images: Store, models: Sequence[str] | None,
                  category: str | None) -> pl.DataFrame:
    """Manifest rows of images that exist and did not fail, within the arena's scope; ``path`` as keys.

    Existence comes from one listing per (model, category), not a request per image.
    """
    manifest = warehouse.read_table(IMAGES_TABLE)
    if manifest.is_empty():
        return manifest
    if models:
        manifest = manifest.filter(pl.col("model").is_in(list(models)))
    if category:
        manifest = manifest.filter(pl.col("category") == category)
    failures = warehouse.read_table(FAILURES_TABLE)
    if not failures.is_empty():
        failed = failures.filter(pl.col("image_index").is_not_null()).select(
            "model", "category", "prompt_id", pl.col("image_index").cast(pl.Int64))
        manifest = manifest.join(failed, on=["model", "category", "prompt_id", "image_index"], how="anti")
    manifest = manifest.with_columns(image_keys(manifest["path"]))
    present: set[str] = set()
    for model, category in manifest.select("model", "category").unique().iter_rows():
        present.update(images.keys(f"{model}/{category}"))
    return manifest.filter(pl.col("path").is_in(list(present)))


def candidate_pairs(images: pl.DataFrame) -> list[Candidate]:
    candidates = []
    if images.is_empty():
        return candidates
    ordered = images.sort("prompt_id", "image_index", "model")
    for (_, _), group in ordered.group_by("prompt_id", "image_index", maintain_order=True):
        rows = group.unique("model", keep="first", maintain_order=True).to_dicts()
        for i, first in enumerate(rows):
            for second in rows[i + 1:]:
                candidates.append(Candidate(
                    first["prompt_id"], first["category"], first["image_index"], first["seed"],
                    ArenaImage(first["model"], first["path"], first["sha256"]),
                    ArenaImage(second["model"], second["path"], second["sha256"])))
    return candidates


def prompt_texts(warehouse: Warehouse, suite_path: Path | None) -> dict[str, str]:
    """Prompt text by id: the warehouse's ``prompts`` table, then the current suite (which wins)."""
    texts: dict[str, str] = {}
    table = warehouse.read_table("prompts")
    if not table.is_empty():
        texts.update(zip(table["prompt_id"], table["prompt"]))
    if suite_path is not None and suite_path.is_file():
        try:
            texts.update({p.id: p.prompt for p in load_suite(suite_path).prompts})
        except PromptSuiteError:
            pass  # the manifest's prompts table still names them
    return texts


class PairPool:
    """The candidates with their vote counts; draws the next pair for a voter."""

    def __init__(self, candidates: Sequence[Candidate], vote_counts: dict[PairKey, int], images: Store,
                 rng: random.Random | None = None) -> None:
        self.candidates = list(candidates)
        self.images = images
        self._index = {c.key: i for i, c in enumerate(self.candidates)}
        self._votes = np.zeros(len(self.candidates))
        self._by_voter: dict[str, dict[int, int]] = {}
        self._usable = np.ones(len(self.candidates), dtype=bool)
        self._rng = rng or random.SystemRandom()
        models = sorted({m for c in self.candidates for m in (c.a.model, c.b.model)})
        self.models = models
        self._a = np.array([models.index(c.a.model) for c in self.candidates], dtype=int)
        self._b = np.array([models.index(c.b.model) for c in self.candidates], dtype=int)
        self.ratings = np.zeros(len(models))  # θ in logit units
        for key, count in vote_counts.items():
            if key in self._index:
                self._votes[self._index[key]] = count

    def __len__(self) -> int:
        return int(self._usable.sum())

    def weights(self, voter: str) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(self.ratings[self._a] - self.ratings[self._b])))
        info = np.maximum(4.0 * p * (1.0 - p), MIN_INFO)
        seen = np.zeros(len(self.candidates))
        for i, count in self._by_voter.get(voter, {}).items():
            seen[i] = count
        return np.where(self._usable, info / (1.0 + self._votes) / (1.0 + VOTER_REPEAT_PENALTY * seen), 0.0)

    def draw(self, voter: str) -> Candidate | None:
        """A weighted draw whose images are intact; a broken candidate leaves the pool."""
        while self._usable.any():
            weights = self.weights(voter)
            i = self._rng.choices(range(len(self.candidates)), weights=weights.tolist())[0]
            if self.candidates[i].intact(self.images):
                return self.candidates[i]
            self._usable[i] = False
        return None

    def record(self, voter: str, key: PairKey) -> None:
        i = self._index.get(key)
        if i is not None:
            self._votes[i] += 1
            seen = self._by_voter.setdefault(voter, {})
            seen[i] = seen.get(i, 0) + 1

    def set_ratings(self, models: Sequence[str], theta: np.ndarray) -> None:
        by_model = dict(zip(models, theta))
        self.ratings = np.array([by_model.get(m, 0.0) for m in self.models])
