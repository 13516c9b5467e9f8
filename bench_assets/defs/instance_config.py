"""``dagster.yaml`` sized to the configured backend, on SQLite or PostgreSQL.

The repository's ``dagster.yaml`` is the template; ``make install`` renders
it into ``$DAGSTER_HOME/dagster.yaml`` with the ``gpu`` pool's limit set to
what the configured backend can run at once (``compute.backend.BACKENDS``:
the local GPU count, at least 1, or ``BENCH_MODAL_MAX_CONTAINERS``) and
enough concurrent runs to keep every slot busy. Comments and every other
setting are kept as written.

With ``BENCH_INSTANCE=postgres`` (or ``--instance postgres``) the rendered
file also gets a ``storage: postgres:`` block whose values are ``env:``
references (``core/instance_settings.py``): one template for a laptop and a
team deployment, so the run queue, pools and monitoring cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench_assets.core.instance_settings import POSTGRES_BLOCK
from bench_assets.compute.backend import PoolSize, backend_kind, configured_compute
from bench_assets.core.config import BenchConfig

_POOL_LIMIT = re.compile(r"^(\s*default_limit:\s*)\d+", re.MULTILINE)
_MAX_RUNS = re.compile(r"^(\s*max_concurrent_runs:\s*)(\d+)", re.MULTILINE)
_STORAGE = re.compile(r"^storage:", re.MULTILINE)


def gpu_pool_size(config: BenchConfig) -> PoolSize:
    """The ``gpu`` pool's slots for the configured backend (``BENCH_COMPUTE`` > ``data/config.yaml``)."""
    return backend_kind(configured_compute(config)["backend"]).gpu_pool()


def render_instance_config(template: str, slots: int, kind: str = "sqlite") -> str:
    """The template with ``pools.default_limit`` = ``slots`` and ``max_concurrent_runs`` >= ``slots``.

    ``kind="postgres"`` appends the PostgreSQL storage block; SQLite needs none
    (Dagster's default keeps its files under ``$DAGSTER_HOME``).
    """
    if slots < 1:
        raise ValueError(f"the gpu pool needs at least one slot, got {slots}")
    if not _POOL_LIMIT.search(template):
        raise ValueError("dagster.yaml template has no 'pools: default_limit:' line to size")
    text = _POOL_LIMIT.sub(lambda m: f"{m.group(1)}{slots}", template, count=1)
    text = _MAX_RUNS.sub(lambda m: f"{m.group(1)}{max(int(m.group(2)), slots)}", text, count=1)
    if kind == "postgres":
        if _STORAGE.search(text):
            raise ValueError("dagster.yaml template already has a 'storage:' section; remove it to choose "
                             "the database with BENCH_INSTANCE")
        text = text.rstrip("\n") + "\n" + POSTGRES_BLOCK
    return text


def write_instance_config(template_path: Path, dagster_home: Path, config: BenchConfig,
                          kind: str = "sqlite") -> tuple[Path, PoolSize]:
    """Render the template into ``dagster_home`` for the configured backend; the file and the pool's size."""
    pool = gpu_pool_size(config)
    target = dagster_home / "dagster.yaml"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    database = "PostgreSQL (DAGSTER_PG_* from the environment)" if kind == "postgres" else "SQLite"
    header = (f"# Rendered from {template_path} by `bench instance-config`: gpu pool {pool.slots} "
              f"({pool.reason}), {database}; edit the template.\n")
    target.write_text(header + render_instance_config(template_path.read_text(), pool.slots, kind))
    return target, pool


# What `bench run` writes into a DAGSTER_HOME that has no dagster.yaml yet (a data folder made by hand, not
# by `make install`): Dagster's defaults, minus its first-run telemetry banner on the user's terminal.
MINIMAL_INSTANCE_CONFIG = (
    "# Written by `bench` for a new DAGSTER_HOME: Dagster's defaults (no run queue, no gpu pool limit).\n"
    "# `bench instance-config` renders the full template (pools sized to the GPUs, run monitoring).\n"
    "telemetry:\n  enabled: false\n"
)


def ensure_instance_config(dagster_home: Path) -> Path:
    """``dagster_home/dagster.yaml``, written (minimal) when missing; an existing one is never touched."""
    target = dagster_home / "dagster.yaml"
    if not target.exists():
        dagster_home.mkdir(parents=True, exist_ok=True)
        target.write_text(MINIMAL_INSTANCE_CONFIG)
    return target
