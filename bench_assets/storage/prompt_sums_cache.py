"""Each score partition's per-prompt sums, remembered by the partition's content digest.

The leaderboard and the comparisons both resample per-prompt sums
(``leaderboard.prompt_sums``): per model, category and prompt, each summary
column summed and the rows counted. After adding one model to a hundred,
every other model's sums are what they were, and their partitions' content
digests (``partition_digests``: from the listing, no file read) say so. This
cache keeps each live partition's sums with the digest of the rows they were
made from, so only partitions with a new digest are read (their model's
score columns) and summed; a changed row is a new digest, so a stale sum is
never used.

One Parquet file per metric in the data directory's ``.cache/prompt-sums``,
rewritten (when something changed) with the partitions listed now, as soon
as that metric's sums are made: one entry per live partition (a
deleted partition's sums go with the next save). A change of the metric's
summary expressions (or of ``SUMS_VERSION``) makes the whole file stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection

import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.storage.cache_files import replacing
from bench_assets.storage.leaderboard import MetricColumn, prompt_sums, read_scores
from bench_assets.storage.partition_digests import PartitionDigests, digest
from bench_assets.storage.warehouse import Warehouse

SUMS_VERSION = "1"  # bump when ``prompt_sums`` changes, so no old sum is read as a new one
FOLDER = "prompt-sums"
PARTITION = ["model", "category"]


def summary_signature(metric: MetricColumn) -> str:
    """What a partition's sums depend on besides its rows: the metric's summary expressions."""
    text = "\x1f".join(f"{name}={expr}" for name, expr in sorted(metric.summary().items()))
    return digest(SUMS_VERSION, metric.name, text)


class PromptSumsCache:
    """``sums(metric)``: ``prompt_sums`` of every model's finite rows, partitions with a known digest read back
    from the cache and only the others read from the warehouse; the live partitions' sums are written back.

    ``partitions_summed`` counts the partitions whose rows were summed (read) by this object: after adding
    one model, that model's partitions only.
    """

    def __init__(self, warehouse: Warehouse, digests: PartitionDigests | None, folder: Path | None = None):
        self.warehouse, self.digests, self.folder = warehouse, digests, folder
        self.partitions_summed = 0

    def _file(self, metric: MetricColumn) -> Path | None:
        return None if self.folder is None else self.folder / f"{metric.name}.parquet"

    def _stored(self, metric: MetricColumn) -> pl.DataFrame | None:
        path = self._file(metric)
        if path is None or not path.is_file():
            return None
        try:
            frame = pl.read_parquet(path)
        except Exception:  # noqa: BLE001 - a damaged cache only costs the reads it saved
            return None
        if frame.is_empty() or frame["signature"][0] != summary_signature(metric):
            return None
        return frame.drop("signature")

    def sums(self, metric: MetricColumn, scores: pl.DataFrame | None = None,
             covered: Collection[str] | None = None) -> pl.DataFrame:
        """Per (model, category, prompt): ``prompt_sums`` of the metric's finite rows, sorted.

        ``scores``: the metric's finite rows already read (the comparisons read them for other reasons) of the
        models ``covered`` (None: of every model): a changed partition of theirs is summed from them instead of
        read again. Without digests: all summed afresh.
        """
        if self.digests is None:
            scores = read_scores(self.warehouse, metric) if scores is None or covered is not None else scores
            return prompt_sums(scores, metric) if not scores.is_empty() else pl.DataFrame()
        live = self._live(metric)
        stored = self._stored(metric)
        known = (stored.join(live, on=[*PARTITION, "digest"], how="semi") if stored is not None
                 else None)
        have = set() if known is None else set(known.select(PARTITION).unique().iter_rows())
        missing = sorted({m for (m, c) in live.select(PARTITION).iter_rows() if (m, c) not in have})
        frames = [] if known is None else [known]
        if missing:
            fresh = self._summed(metric, missing, scores, covered)
            if fresh.height:
                fresh = fresh.join(live, on=PARTITION, how="left")
                # a model's partitions that were known are kept from the cache: every partition taken once
                if known is not None:
                    fresh = fresh.join(known.select(PARTITION).unique(), on=PARTITION, how="anti")
                self.partitions_summed += fresh.select(PARTITION).n_unique()
                frames.append(fresh)
        if not frames:
            return pl.DataFrame()
        everything = pl.concat(frames, how="vertical_relaxed").sort("model", "category", "prompt_id")
        if missing or stored is None or known.height != stored.height:  # unchanged: the file stays as it is
            self._write(metric, everything.filter(pl.col("digest").is_not_null()))
        return everything.drop("digest")

    def _live(self, metric: MetricColumn) -> pl.DataFrame:
        table = self.digests.of_table(metric.table)
        return pl.DataFrame({"model": [m for m, _ in table], "category": [c for _, c in table],
                             "digest": list(table.values())},
                            schema={"model": pl.Utf8, "category": pl.Utf8, "digest": pl.Utf8})

    def _summed(self, metric: MetricColumn, models: list[str], scores: pl.DataFrame | None,
                covered: Collection[str] | None = None) -> pl.DataFrame:
        """``prompt_sums`` of the models named: from ``scores`` for those it covers, else their columns read (all
        models' at once when most are wanted, a full build)."""
        absent = [m for m in models if m not in covered] if scores is not None and covered is not None else []
        if absent:
            read = self._read(metric, absent)
            scores = read if scores.is_empty() else pl.concat([scores, read], how="diagonal_relaxed")
        if scores is None:
            scores = self._read(metric, models)
        if scores.is_empty():
            return pl.DataFrame()
        return prompt_sums(scores.filter(pl.col("model").is_in(models)), metric)

    def _read(self, metric: MetricColumn, models: list[str]) -> pl.DataFrame:
        """The models' finite rows: all models' at once when most are wanted (a full build)."""
        if 2 * len(models) > len(self._model_names(metric)):
            scores = read_scores(self.warehouse, metric)
            return scores.filter(pl.col("model").is_in(models)) if not scores.is_empty() else scores
        return pl.concat([read_scores(self.warehouse, metric, m) for m in models], how="diagonal_relaxed")

    def _model_names(self, metric: MetricColumn) -> set[str]:
        return {m for m, _ in self.digests.of_table(metric.table)}

    def _write(self, metric: MetricColumn, frame: pl.DataFrame) -> None:
        """The metric's live partitions' sums, written (atomically) as soon as made: a hundred models' sums of
        every metric are never held at once."""
        path = self._file(metric)
        if path is None:
            return
        with replacing(path) as tmp:
            frame.with_columns(pl.lit(summary_signature(metric)).alias("signature")).write_parquet(tmp)


def no_sums_cache(warehouse: Warehouse) -> PromptSumsCache:
    """Sums made afresh every time from the rows (no digests, no file): tests and one-off callers."""
    return PromptSumsCache(warehouse, None, None)


def prompt_sums_cache(paths: DataPaths, warehouse: Warehouse, digests: PartitionDigests) -> PromptSumsCache:
    """The data directory's cache, in its ``.cache`` folder (local even when the warehouse is a bucket)."""
    return PromptSumsCache(warehouse, digests, paths.cache / FOLDER)
