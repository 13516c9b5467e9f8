"""The installation's configuration file: ``data/config.yaml`` (or ``BENCH_CONFIG``).

It says which scorer weights this install uses and the default generation
settings, so that the UI, the sensor, the nightly schedule and the CLI all
agree without anyone editing code. Absent file = the real defaults (ViT-L/14
OpenAI CLIP, LPIPS on a pretrained AlexNet, SDXL-friendly generation).

Example::

    generation: {steps: 25, width: 768, height: 768}
    metrics:
      clip_score: {model: ViT-B-32, pretrained: laion2b_s34b_b79k}
    compute: {device: cuda}
    storage: {root: s3://team-bench/results}   # images + warehouse in a bucket (storage/store.py)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

from bench_assets.core.errors import BenchError
from bench_assets.core.paths import DataPaths
from bench_assets.core.settings import GenerationSettings, checked_overrides
from bench_assets.core.yaml_files import read_yaml_mapping

_SECTIONS = {"generation", "metrics", "compute", "leaderboard", "storage", "distribution"}


class ConfigError(BenchError, ValueError):
    """The config file is malformed; the message names the file."""


class BackendNotReady(BenchError, RuntimeError):
    """The selected compute backend cannot start here (e.g. no Modal token); the message says the fix.

    What a backend's preflight (``compute.backend.BACKENDS``) raises; ``bench run``
    and ``bench demo`` stop on it with exit code 3 before any work.
    """


@dataclass(frozen=True)
class BenchConfig:
    generation: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)
    leaderboard: dict[str, Any] = field(default_factory=dict)  # composite weights, gate margins (core/decision.py)
    storage: dict[str, Any] = field(default_factory=dict)  # {root: s3://bucket/prefix, endpoint_url: ...} (storage/store.py)
    distribution: dict[str, Any] = field(default_factory=dict)  # FID mode, k, bootstrap (metrics/distribution_base.py)
    source: str = "<defaults>"


def config_path(paths: DataPaths) -> Path:
    env = os.environ.get("BENCH_CONFIG")
    return Path(env) if env else paths.root / "config.yaml"


def load_config(paths: DataPaths) -> BenchConfig:
    path = config_path(paths)
    if not path.is_file():
        return BenchConfig()
    data = read_yaml_mapping(path, ConfigError, f"a mapping with sections {sorted(_SECTIONS)}")
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; known: {sorted(_SECTIONS)}")
    for section in _SECTIONS:
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{path}: section '{section}' must be a mapping")
    return BenchConfig(
        generation=data.get("generation", {}),
        metrics=data.get("metrics", {}),
        compute=data.get("compute", {}),
        leaderboard=data.get("leaderboard", {}),
        storage=data.get("storage", {}),
        distribution=data.get("distribution", {}),
        source=str(path),
    )


BACKEND_ENV = "BENCH_COMPUTE"
DEFAULT_BACKEND = "local"


def backend_from_env() -> str | None:
    """``BENCH_COMPUTE``, normalised; None when unset (then the config file decides)."""
    return os.environ.get(BACKEND_ENV, "").strip().lower() or None


def compute_config(config: BenchConfig, known_backends: Collection[str] = ()) -> dict[str, Any]:
    """The ``compute:`` section with its ``backend`` resolved: ``BENCH_COMPUTE`` > the file > local.

    The one place that precedence lives: the Dagster resource, ``bench run``'s
    preflight and ``bench instance-config`` all read the backend from here.
    ``known_backends`` (``compute.backend.BACKENDS``) checks the name, naming
    where a wrong one came from.
    """
    section = dict(config.compute)
    env = backend_from_env()
    if env:
        section["backend"] = env
    section.setdefault("backend", DEFAULT_BACKEND)
    if known_backends and section["backend"] not in known_backends:
        where = BACKEND_ENV if env else config.source
        raise ConfigError(f"{where}: compute backend {section['backend']!r} is not one of {tuple(known_backends)}")
    return section


def generation_defaults(config: BenchConfig) -> GenerationSettings:
    """The platform's defaults with the file's ``generation:`` section over them.

    The first two steps of the settings order (defaults < config file < the
    prompt suite's ``generation:`` < the model's card or sidecar; the rest is
    ``models.registry.model_settings``), shared by the Dagster resource and the CLI.
    """
    where = f"{config.source}: generation"
    return GenerationSettings().with_overrides(checked_overrides(config.generation, where), source=where)
