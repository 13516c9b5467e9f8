"""``dagster.yaml`` sized to this machine's GPUs, on SQLite or PostgreSQL.

The repository's ``dagster.yaml`` is the template; ``make install`` renders
it into ``$DAGSTER_HOME/dagster.yaml`` with the ``gpu`` pool's limit set to
the GPU count (at least 1, so a CPU-only machine still runs one GPU-pool
step at a time) and enough concurrent runs to keep every GPU busy. Comments
and every other setting are kept as written.

With ``BENCH_INSTANCE=postgres`` (or ``--instance postgres``) the rendered
file also gets a ``storage: postgres:`` block whose values are ``env:``
references (``core/instance_settings.py``): one template for a laptop and a
team deployment, so the run queue, pools and monitoring cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench_assets.core.instance_settings import POSTGRES_BLOCK

_POOL_LIMIT = re.compile(r"^(\s*default_limit:\s*)\d+", re.MULTILINE)
_MAX_RUNS = re.compile(r"^(\s*max_concurrent_runs:\s*)(\d+)", re.MULTILINE)
_STORAGE = re.compile(r"^storage:", re.MULTILINE)


def render_instance_config(template: str, gpus: int, kind: str = "sqlite") -> str:
    """The template with ``pools.default_limit`` = GPUs and ``max_concurrent_runs`` >= GPUs.

    ``kind="postgres"`` appends the PostgreSQL storage block; SQLite needs none
    (Dagster's default keeps its files under ``$DAGSTER_HOME``).
    """
    slots = max(1, gpus)
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


def write_instance_config(template_path: Path, dagster_home: Path, gpus: int, kind: str = "sqlite") -> Path:
    target = dagster_home / "dagster.yaml"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    database = "PostgreSQL (DAGSTER_PG_* from the environment)" if kind == "postgres" else "SQLite"
    header = (f"# Rendered from {template_path} for {gpus} GPU(s), {database}, by `bench instance-config`; "
              "edit the template.\n")
    target.write_text(header + render_instance_config(template_path.read_text(), gpus, kind))
    return target
