"""``dagster.yaml`` sized to this machine's GPUs.

The repository's ``dagster.yaml`` is the template; ``make install`` renders
it into ``$DAGSTER_HOME/dagster.yaml`` with the ``gpu`` pool's limit set to
the GPU count (at least 1, so a CPU-only machine still runs one GPU-pool
step at a time) and enough concurrent runs to keep every GPU busy. Comments
and every other setting are kept as written.
"""

from __future__ import annotations

import re
from pathlib import Path

_POOL_LIMIT = re.compile(r"^(\s*default_limit:\s*)\d+", re.MULTILINE)
_MAX_RUNS = re.compile(r"^(\s*max_concurrent_runs:\s*)(\d+)", re.MULTILINE)


def render_instance_config(template: str, gpus: int) -> str:
    """The template with ``pools.default_limit`` = GPUs and ``max_concurrent_runs`` >= GPUs."""
    slots = max(1, gpus)
    if not _POOL_LIMIT.search(template):
        raise ValueError("dagster.yaml template has no 'pools: default_limit:' line to size")
    text = _POOL_LIMIT.sub(lambda m: f"{m.group(1)}{slots}", template, count=1)
    return _MAX_RUNS.sub(lambda m: f"{m.group(1)}{max(int(m.group(2)), slots)}", text, count=1)


def write_instance_config(template_path: Path, dagster_home: Path, gpus: int) -> Path:
    target = dagster_home / "dagster.yaml"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    header = f"# Rendered from {template_path} for {gpus} GPU(s) by `bench instance-config`; edit the template.\n"
    target.write_text(header + render_instance_config(template_path.read_text(), gpus))
    return target
