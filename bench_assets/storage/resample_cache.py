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
digests, one matrix of figures (a row each, read in one go) and which users
(``leaderboard``, ``comparisons``: both assets resample the same per-model
sums, so a figure one computed the other reads back) used each entry last.
Saving keeps the entries this user used in this build and the entries
another user still uses, so neither evicts the other's figures and the file
holds about one build's figures, about 8 KB per model × metric × slice.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from bench_assets.core.paths import DataPaths
from bench_assets.stats.resampling import Combine, bootstrap_counts, figure
from bench_assets.storage.cache_files import replacing

CACHE_VERSION = "1"  # bump when a metric's combine or the resampling changes, so old figures are not read
CACHE_FILE = "leaderboard-resamples.npz"
LEADERBOARD = "leaderboard"
COMPARISONS = "comparisons"


def sums_digest(metric: str, sums: Mapping[str, np.ndarray], n_boot: int, seed: int) -> str:
    """What a resampled figure depends on: the metric, the resampling and the per-prompt sums, byte for byte."""
    # sha256, not blake2b: CPUs with SHA extensions hash it twice as fast, and a refresh hashes every model's
    # sums of every slice and metric (50,000 lookups, 2.3 s of blake2b at 100 models x 10,000 prompts)
    h = hashlib.sha256(f"{CACHE_VERSION}\x1f{metric}\x1f{n_boot}\x1f{seed}".encode())
    for name in sorted(sums):
        column = np.ascontiguousarray(sums[name], dtype=float)
        h.update(f"\x1e{name}:{column.size}".encode())
        h.update(column)  # its buffer, not a copy
    return h.hexdigest()[:32]


class ResampleCache:
    """Resampled figures by digest: ``figures`` computes only what it has not seen; ``save`` keeps what ``user``
    used in this build and what other users of the file still use.

    ``computed`` / ``reused`` count the lookups of this build, and
    ``computed_models`` names the models whose figures were computed (what a
    refresh after adding one model should be limited to).
    """

    def __init__(self, path: Path | None = None, user: str = LEADERBOARD):
        self.path, self.user = path, user
        self._stored, self._users, self._loaded = self._load()
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

    def _load(self) -> tuple[dict[str, np.ndarray], dict[str, frozenset[str]], int | None]:
        """(figures, users of each, the file's mtime) as saved; a file of before users were kept is the
        leaderboard's (its only user then)."""
        if self.path is None or not self.path.is_file():
            return {}, {}, None
        try:
            mtime = self.path.stat().st_mtime_ns
            with np.load(self.path) as saved:  # one matrix, a row per figure: read at once, not member by member
                keys = saved["keys"].tolist()
                users = saved["users"].tolist() if "users" in saved.files else [LEADERBOARD] * len(keys)
                stored = dict(zip(keys, saved["values"]))
            return stored, {k: frozenset(u.split(",")) for k, u in zip(keys, users)}, mtime
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # a damaged cache is only lost time
            return {}, {}, None

    def _kept(self) -> tuple[dict[str, np.ndarray], dict[str, frozenset[str]]]:
        """What the file keeps: this build's figures (this user's, and others' where they share them), and the
        other users' figures this build did not use (without this user, who no longer needs them)."""
        if self.path is not None and self.path.is_file() and self.path.stat().st_mtime_ns != self._loaded:
            self._stored, self._users, self._loaded = self._load()  # another user saved since: keep its entries
        users = {k: (self._users.get(k, frozenset()) - {self.user}) for k in self._stored}
        figures = {k: v for k, v in self._stored.items() if users[k]}
        users = {k: u for k, u in users.items() if u}
        for key, value in self._used.items():
            figures[key], users[key] = value, users.get(key, frozenset()) | {self.user}
        return figures, users

    def save(self) -> None:
        """Write what ``_kept`` keeps (the file never grows past one build of each user); nothing when it is
        what is already saved."""
        if self.path is None:
            return
        figures, users = self._kept()
        if not figures or users == self._users:
            return
        with replacing(self.path, ".tmp.npz") as tmp:
            np.savez(tmp, keys=np.array(list(figures)), values=np.stack(list(figures.values())),
                     users=np.array([",".join(sorted(users[k])) for k in figures]))
        self._stored, self._users, self._loaded = figures, users, self.path.stat().st_mtime_ns


def no_cache() -> ResampleCache:
    """A cache that remembers within one build only (tests, one-off callers)."""
    return ResampleCache(None)


def leaderboard_cache(paths: DataPaths, user: str = LEADERBOARD) -> ResampleCache:
    """The resampled figures' cache, in the data directory's ``.cache`` (local even when the warehouse is a
    bucket), opened for ``user`` (``LEADERBOARD``, ``COMPARISONS``): the two assets share it."""
    return ResampleCache(paths.cache / CACHE_FILE, user)
