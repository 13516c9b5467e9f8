"""Bootstrap figures remembered by the content of what was resampled, so an unchanged model costs nothing.

The leaderboard's intervals, rank intervals and composite all resample
prompts (``stats.resampling.figure`` with ``bootstrap_counts``): per model
and slice, a thousand figures that depend only on that model's per-prompt
sums, the metric and the number of prompts. Adding one model to a hundred
used to resample all hundred again; with this cache the others' figures are
looked up by a digest of exactly those inputs (the sums' bytes, so a changed
score is a new key and a stale figure can never be read), and only the new
model is resampled. The figures read back are the arrays computed before,
so the leaderboard is the same to the last bit whether built fresh or not.

The cache is one ``.npz`` file (in the data directory's ``.cache``): the
digests and one matrix of figures (a row each, read in one go); entries not
used by a build are dropped when it is saved, so it holds one build's
figures, about 8 KB per model × metric × slice.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from bench_assets.core.paths import DataPaths
from bench_assets.stats.resampling import Combine, bootstrap_counts, figure

CACHE_VERSION = "1"  # bump when a metric's combine or the resampling changes, so old figures are not read
CACHE_FILE = "leaderboard-resamples.npz"


def sums_digest(metric: str, sums: Mapping[str, np.ndarray], n_boot: int, seed: int) -> str:
    """What a resampled figure depends on: the metric, the resampling and the per-prompt sums, byte for byte."""
    h = hashlib.blake2b(f"{CACHE_VERSION}\x1f{metric}\x1f{n_boot}\x1f{seed}".encode(), digest_size=16)
    for name in sorted(sums):
        column = np.ascontiguousarray(sums[name], dtype=float)
        h.update(f"\x1e{name}:{column.size}".encode())
        h.update(column.tobytes())
    return h.hexdigest()


class ResampleCache:
    """Resampled figures by digest: ``figures`` computes only what it has not seen; ``save`` keeps what was used.

    ``computed`` / ``reused`` count the lookups of this build, and
    ``computed_models`` names the models whose figures were computed (what a
    refresh after adding one model should be limited to).
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self._stored: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            try:
                with np.load(path) as saved:  # one matrix, a row per figure: read at once, not member by member
                    self._stored = dict(zip(saved["keys"].tolist(), saved["values"]))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # a damaged cache is only lost time
                self._stored = {}
        self._used: dict[str, np.ndarray] = {}
        self.computed = 0
        self.reused = 0
        self.computed_models: set[str] = set()

    def figures(self, metric: str, model: str, sums: Mapping[str, np.ndarray], combine: Combine,
                n_boot: int, seed: int = 0) -> np.ndarray:
        """``figure(sums, combine, bootstrap_counts(prompts, n_boot, seed))``, read back when already made."""
        key = sums_digest(metric, sums, n_boot, seed)
        found = self._used.get(key)
        if found is None:
            found = self._stored.get(key)
            if found is None:
                n_prompts = len(next(iter(sums.values())))
                found = figure(sums, combine, bootstrap_counts(n_prompts, n_boot, seed))
                self.computed += 1
                self.computed_models.add(model)
            else:
                self.reused += 1
            self._used[key] = found
        else:
            self.reused += 1
        return found

    def save(self) -> None:
        """Write the figures this build used (only those: the file never grows past one build's); nothing
        when they are the ones already saved."""
        if self.path is None or not self._used or (not self.computed and self._used.keys() == self._stored.keys()):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp.npz")
        try:
            np.savez(tmp, keys=np.array(list(self._used)), values=np.stack(list(self._used.values())))
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self._stored = dict(self._used)


def no_cache() -> ResampleCache:
    """A cache that remembers within one build only (tests, one-off callers)."""
    return ResampleCache(None)


def leaderboard_cache(paths: DataPaths) -> ResampleCache:
    """The leaderboard's cache, in the data directory's ``.cache`` (local even when the warehouse is a bucket)."""
    return ResampleCache(paths.cache / CACHE_FILE)
