"""``dagster.yaml`` sized to this machine's GPUs (or to the Modal containers allowed).

The repository's ``dagster.yaml`` is the template; ``make install`` renders
it into ``$DAGSTER_HOME/dagster.yaml`` with the ``gpu`` pool's limit set to
what the configured backend can run at once (``compute.backend.BACKENDS``:
the local GPU count, at least 1, or ``BENCH_MODAL_MAX_CONTAINERS``) and
enough concurrent runs to keep every slot busy. Comments and every other
setting are kept as written.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench_assets.compute.backend import PoolSize, backend_kind, configured_compute
from bench_assets.core.config import BenchConfig

_POOL_LIMIT = re.compile(r"^(\s*default_limit:\s*)\d+", re.MULTILINE)
_MAX_RUNS = re.compile(r"^(\s*max_concurrent_runs:\s*)(\d+)", re.MULTILINE)


def gpu_pool_size(config: BenchConfig) -> PoolSize:
    """The ``gpu`` pool's slots for the configured backend (``BENCH_COMPUTE`` > ``data/config.yaml``)."""
    return backend_kind(configured_compute(config)["backend"]).gpu_pool()


def render_instance_config(template: str, slots: int) -> str:
    """The template with ``pools.default_limit`` = ``slots`` and ``max_concurrent_runs`` >= ``slots``."""
    if slots < 1:
        raise ValueError(f"the gpu pool needs at least one slot, got {slots}")
    if not _POOL_LIMIT.search(template):
        raise ValueError("dagster.yaml template has no 'pools: default_limit:' line to size")
    text = _POOL_LIMIT.sub(lambda m: f"{m.group(1)}{slots}", template, count=1)
    return _MAX_RUNS.sub(lambda m: f"{m.group(1)}{max(int(m.group(2)), slots)}", text, count=1)


def write_instance_config(template_path: Path, dagster_home: Path, config: BenchConfig) -> tuple[Path, PoolSize]:
    """Render the template into ``dagster_home`` for the configured backend; the file and the pool's size."""
    pool = gpu_pool_size(config)
    target = dagster_home / "dagster.yaml"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    header = (f"# Rendered from {template_path} by `bench instance-config`: gpu pool {pool.slots} "
              f"({pool.reason}); edit the template.\n")
    target.write_text(header + render_instance_config(template_path.read_text(), pool.slots))
    return target, pool
