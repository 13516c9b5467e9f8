"""Modal limits and GPU type read from the environment, shared by the Modal app, the ``gpu`` pool's size
and ``bench doctor``.

Standard library only: ``modal_app`` (also inside the containers) and
``compute.backend`` (when ``bench instance-config`` sizes the pool) read the
same variable here, with the same default.
"""

from __future__ import annotations

import os

from bench_assets.core.config import ConfigError

MAX_CONTAINERS_ENV = "BENCH_MODAL_MAX_CONTAINERS"
DEFAULT_MAX_CONTAINERS = 8
GPU_ENV = "BENCH_MODAL_GPU"
DEFAULT_GPU = "H100"


def modal_gpu() -> str:
    """The GPU type each Modal container asks for (``BENCH_MODAL_GPU``, default H100)."""
    return os.environ.get(GPU_ENV, DEFAULT_GPU)


def max_containers() -> int:
    """GPU containers Modal may run at once for this app (``BENCH_MODAL_MAX_CONTAINERS``, default 8)."""
    raw = os.environ.get(MAX_CONTAINERS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CONTAINERS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_CONTAINERS_ENV} must be a whole number of containers, at least 1; got {raw!r}")
    return int(raw)
