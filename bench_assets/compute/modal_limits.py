"""Modal limits read from the environment, shared by the Modal app and the ``gpu`` pool's size.

Standard library only: ``modal_app`` (also inside the containers) and
``compute.backend`` (when ``bench instance-config`` sizes the pool) read the
same variable here, with the same default.
"""

from __future__ import annotations

import os

from bench_assets.core.config import ConfigError

MAX_CONTAINERS_ENV = "BENCH_MODAL_MAX_CONTAINERS"
DEFAULT_MAX_CONTAINERS = 8


def max_containers() -> int:
    """GPU containers Modal may run at once for this app (``BENCH_MODAL_MAX_CONTAINERS``, default 8)."""
    raw = os.environ.get(MAX_CONTAINERS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CONTAINERS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_CONTAINERS_ENV} must be a whole number of containers, at least 1; got {raw!r}")
    return int(raw)
