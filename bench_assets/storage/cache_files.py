"""Replacing a cache file in the data directory's ``.cache`` at once.

Every cache there (partition digests, per-prompt sums, item values, GPU seconds, bootstrap figures) is a
file rewritten whole: written beside its place under a name of its own, then renamed over it, so a
concurrent reader sees the old file or the new one, never half of one, and a failed write leaves no
temporary file behind.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (ending in ``suffix``: ``np.savez`` adds ``.npz`` to a name that
    lacks it) to write; on success it replaces ``path``, in any case it is gone afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
