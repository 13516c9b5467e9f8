"""Where the benchmark keeps its files.

Everything lives under one data directory so that a checkout, a CI run and a
test's temporary folder are interchangeable: set ``BENCH_DATA_DIR`` to move it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_data_dir() -> Path:
    """The repo's ``data/``: found by walking up from the working directory.

    Walking up lets ``bench leaderboard`` work from a sub-folder of the checkout.
    """
    env = os.environ.get("BENCH_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "workspace.yaml").is_file() and (folder / "data").is_dir():
            return folder / "data"
    return here / "data"


@dataclass(frozen=True)
class DataPaths:
    """The layout of the data directory (see DESIGN.md, "Data contracts")."""

    root: Path

    @classmethod
    def from_env(cls) -> "DataPaths":
        return cls(_default_data_dir())

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def references(self) -> Path:
        """Reference sets: folders of real images (or cards naming one) that distribution metrics compare with."""
        return self.root / "references"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def report(self) -> Path:
        """The static report site (``index.html`` opens from ``file://``)."""
        return self.root / "report"

    @property
    def duckdb(self) -> Path:
        return self.root / "bench.duckdb"

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    def dagster_home(self) -> Path:
        """``DAGSTER_HOME`` when set, else ``<data>/dagster_home`` (what the Makefile exports)."""
        env = os.environ.get("DAGSTER_HOME")
        return Path(env).expanduser() if env else self.root / "dagster_home"

    @property
    def metric_models(self) -> Path:
        """Weights of the scorers built for the demo (real users point at hub ids)."""
        return self.root / "metric_models"

    def dagster_home(self) -> Path:
        """The Dagster instance's folder: ``DAGSTER_HOME``, else ``<data>/dagster_home`` (what the Makefile exports)."""
        env = os.environ.get("DAGSTER_HOME")
        return Path(env) if env else self.root / "dagster_home"

    def default_suite(self) -> Path:
        """The prompt suite that defines the ``category`` partitions.

        ``BENCH_PROMPT_SUITE`` is a name (``geneval`` → ``data/prompts/geneval.jsonl``,
        or ``quick`` → ``data/prompts/quick.suite.yaml`` when there is no
        ``quick.jsonl``), a file name in ``data/prompts/``, or a path.
        """
        name = os.environ.get("BENCH_PROMPT_SUITE", "default")
        candidate = Path(name).expanduser()
        if candidate.suffix in (".jsonl", ".yaml", ".yml"):
            if candidate.is_file():
                return candidate
            in_prompts = self.prompts / candidate.name
            return in_prompts if in_prompts.is_file() else candidate
        jsonl, spec = self.prompts / f"{name}.jsonl", self.prompts / f"{name}.suite.yaml"
        return spec if spec.is_file() and not jsonl.is_file() else jsonl
