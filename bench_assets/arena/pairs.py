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


ARENA_COLUMNS = ("model", "category", "prompt_id", "image_index", "seed", "path", "sha256")


def usable_images(warehouse: Warehouse, images: Store, models: Sequence[str] | None,
                  category: str | None) -> pl.DataFrame:
    """Manifest rows of images that did not fail, within the arena's scope; ``path`` as keys.

    Only the columns a pair needs are read. Whether a file is still there,
    with the bytes recorded, is checked when its pair is drawn
    (``PairPool.draw``: a broken candidate leaves the pool then), not by
    listing every image here: at 100 models × 10,000 prompts that listing was
    4 million entries and most of a reload's time, and a file can go
    missing after any listing anyway. ``images`` is kept for that check's callers.
    """
    manifest = warehouse.read_columns(IMAGES_TABLE, ARENA_COLUMNS)
    if manifest.is_empty():
        return manifest
    if models:
        manifest = manifest.filter(pl.col("model").is_in(list(models)))
    if category:
        manifest = manifest.filter(pl.col("category") == category)
    failures = warehouse.read_columns(FAILURES_TABLE, ("model", "category", "prompt_id", "image_index"))
    if not failures.is_empty():
        failed = failures.filter(pl.col("image_index").is_not_null()).select(
            "model", "category", "prompt_id", pl.col("image_index").cast(pl.Int64))
        manifest = manifest.join(failed, on=["model", "category", "prompt_id", "image_index"], how="anti")
    return manifest.with_columns(image_keys(manifest["path"]))


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
    """The candidates with their vote counts; draws the next pair for a voter.

    No candidate is built before it is drawn: the images are indexed once as a
    (prompt, seed index) × model table of manifest rows, so a model pair's weight
    is info(a, b) times the number of seeds both have. Only keys that have votes
    or turned out broken (few next to all pairs) are held one by one; their
    exact weights replace the pair's plain one. A draw picks a model pair or one
    of those keys by total weight, then a seed uniformly among the pair's plain
    ones: the same distribution as weighing every candidate, at O(models² +
    voted keys + seeds) a draw.
    """

    def __init__(self, images: pl.DataFrame, vote_counts: dict[PairKey, int], store: Store,
                 rng: random.Random | None = None) -> None:
        self.images = store
        self._rng = rng or random.SystemRandom()
        self._rows, self._row_of, self._groups, self._all_models = _index_images(images)
        self._group_of = {key: g for g, key in enumerate(self._groups)}
        present = (self._row_of >= 0).astype(np.float32)  # exact counts below 2**24 seeds
        self._shared = np.triu((present.T @ present).astype(np.int64), k=1)  # [a, b]: seeds both have, a < b
        paired = (self._shared + self._shared.T).sum(axis=1) > 0
        self.models = [m for m, p in zip(self._all_models, paired) if p]
        self._model_of = {m: i for i, m in enumerate(self._all_models)}
        self.ratings = np.zeros(len(self._all_models))  # θ in logit units
        self._marked = _MarkedKeys(len(self._all_models))
        self._by_voter: dict[str, dict[int, int]] = {}
        for key, count in vote_counts.items():
            slot = self._slot(key)
            if slot is not None:
                self._marked.votes[slot] = count

    def __len__(self) -> int:
        return int(self._shared.sum()) - int(self._marked.broken[:self._marked.size].sum())

    def __contains__(self, key: PairKey) -> bool:
        """Whether ``key`` is a candidate still offered (both images indexed, not found broken)."""
        triple = self._triple(key)
        if triple is None:
            return False
        slot = self._marked.slot_of.get(triple)
        return slot is None or not self._marked.broken[slot]

    def weight(self, voter: str, key: PairKey) -> float:
        """The draw weight of one candidate for ``voter`` (0 if it is not offered)."""
        if key not in self:
            return 0.0
        g, a, b = self._triple(key)
        slot = self._marked.slot_of.get((g, a, b))
        info = self._info()[a, b]
        if slot is None:
            return float(info)
        seen = self._by_voter.get(voter, {}).get(slot, 0)
        return float(info / (1.0 + self._marked.votes[slot]) / (1.0 + VOTER_REPEAT_PENALTY * seen))

    def draw(self, voter: str) -> Candidate | None:
        """A weighted draw whose images are intact; a broken candidate leaves the pool."""
        while (triple := self._draw_triple(voter)) is not None:
            candidate = self._candidate(*triple)
            if candidate.intact(self.images):
                return candidate
            self._marked.broken[self._mark(triple)] = True
        return None

    def record(self, voter: str, key: PairKey) -> None:
        slot = self._slot(key)
        if slot is not None:
            self._marked.votes[slot] += 1
            seen = self._by_voter.setdefault(voter, {})
            seen[slot] = seen.get(slot, 0) + 1

    def set_ratings(self, models: Sequence[str], theta: np.ndarray) -> None:
        by_model = dict(zip(models, theta))
        self.ratings = np.array([by_model.get(m, 0.0) for m in self._all_models])

    def _info(self) -> np.ndarray:
        """info(a, b) for every model pair: 4·p·(1 − p), floored at MIN_INFO."""
        p = 1.0 / (1.0 + np.exp(-(self.ratings[:, None] - self.ratings[None, :])))
        return np.maximum(4.0 * p * (1.0 - p), MIN_INFO)

    def _draw_triple(self, voter: str) -> tuple[int, int, int] | None:
        """(seed group, model a, model b) with probability proportional to the candidate's weight."""
        info, marked = self._info(), self._marked
        n = marked.size
        g, a, b = marked.group[:n], marked.a[:n], marked.b[:n]
        seen = np.zeros(n)
        for slot, count in self._by_voter.get(voter, {}).items():
            seen[slot] = count
        exact = np.where(marked.broken[:n], 0.0,
                         info[a, b] / (1.0 + marked.votes[:n]) / (1.0 + VOTER_REPEAT_PENALTY * seen))
        plain = np.triu(info, k=1) * (self._shared - marked.per_pair)
        cumulative = np.cumsum(np.concatenate([plain.ravel(), exact]))
        if not len(cumulative) or cumulative[-1] <= 0:
            return None
        i = min(int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right")),
                len(cumulative) - 1)
        if i >= plain.size:
            return int(g[i - plain.size]), int(a[i - plain.size]), int(b[i - plain.size])
        a_, b_ = divmod(i, plain.shape[1])
        both = np.flatnonzero((self._row_of[:, a_] >= 0) & (self._row_of[:, b_] >= 0))
        free = np.setdiff1d(both, g[(a == a_) & (b == b_)], assume_unique=True)
        return int(free[int(self._rng.random() * len(free))]), a_, b_

    def _candidate(self, g: int, a: int, b: int) -> Candidate:
        first, second = self._rows.row(int(self._row_of[g, a]), named=True), self._rows.row(
            int(self._row_of[g, b]), named=True)
        return Candidate(first["prompt_id"], first["category"], first["image_index"], first["seed"],
                         ArenaImage(first["model"], first["path"], first["sha256"]),
                         ArenaImage(second["model"], second["path"], second["sha256"]))

    def _triple(self, key: PairKey) -> tuple[int, int, int] | None:
        prompt_id, image_index, first, second = key
        g, a, b = self._group_of.get((prompt_id, image_index)), self._model_of.get(first), self._model_of.get(second)
        if g is None or a is None or b is None or a >= b or self._row_of[g, a] < 0 or self._row_of[g, b] < 0:
            return None
        return g, a, b

    def _slot(self, key: PairKey) -> int | None:
        triple = self._triple(key)
        return None if triple is None else self._mark(triple)

    def _mark(self, triple: tuple[int, int, int]) -> int:
        return self._marked.slot(*triple)


class _MarkedKeys:
    """Candidates held one by one (voted on, or found broken), in growable parallel arrays."""

    def __init__(self, models: int) -> None:
        self.slot_of: dict[tuple[int, int, int], int] = {}
        self.size = 0
        self.group, self.a, self.b = (np.zeros(16, dtype=np.int64) for _ in range(3))
        self.votes = np.zeros(16)
        self.broken = np.zeros(16, dtype=bool)
        self.per_pair = np.zeros((models, models), dtype=np.int64)  # marked keys of each model pair

    def slot(self, g: int, a: int, b: int) -> int:
        found = self.slot_of.get((g, a, b))
        if found is not None:
            return found
        if self.size == len(self.votes):
            self.group, self.a, self.b, self.votes, self.broken = (
                np.concatenate([column, np.zeros_like(column)])
                for column in (self.group, self.a, self.b, self.votes, self.broken))
        slot, self.size = self.size, self.size + 1
        self.group[slot], self.a[slot], self.b[slot] = g, a, b
        self.slot_of[(g, a, b)] = slot
        self.per_pair[a, b] += 1
        return slot


def _index_images(images: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, list[tuple[str, int]], list[str]]:
    """Manifest rows, a (seed group × model) table of row numbers (−1: none), the groups, the models.

    A group is one (prompt id, image index), groups in (prompt id, image index)
    order; a model with two rows there keeps its first, as the candidates
    always did. Prompts and models become integer codes (their few distinct
    values sorted), so the millions of rows are grouped by one integer
    ``np.unique``, not a sort of strings, and stay where they are (the table
    holds their row numbers).
    """
    if images.is_empty():
        return images, np.full((0, 0), -1, dtype=np.int32), [], []
    rows = images.select("model", "category", "prompt_id", "image_index", "seed", "path", "sha256")
    models = sorted(rows["model"].unique().to_list())
    prompt_ids = sorted(rows["prompt_id"].unique().to_list())
    model = _codes(rows["model"], models)
    prompt = _codes(rows["prompt_id"], prompt_ids)
    index = rows["image_index"].cast(pl.Int64).to_numpy()
    span = int(index.max()) + 1
    group_key = prompt * span + index
    _, first = np.unique(group_key * len(models) + model, return_index=True)  # (group, model) order, first row
    group_keys, group = np.unique(group_key[first], return_inverse=True)
    row_of = np.full((len(group_keys), len(models)), -1, dtype=np.int32)
    row_of[group, model[first]] = first
    groups = [(prompt_ids[int(k) // span], int(k) % span) for k in group_keys]
    return rows, row_of, groups, models


def _codes(values: pl.Series, distinct: list[str]) -> np.ndarray:
    """Each value's position in ``distinct``."""
    return values.replace_strict(distinct, list(range(len(distinct))), return_dtype=pl.Int64).to_numpy()
