"""Can this process use the data directory: ``bench doctor``'s storage check.

One function with the same contract as an object store's ``Store.check()``
(``None`` when usable, else one line saying what is wrong and what to set),
so that when the data root may be an object-store URL the doctor calls the
store's own check instead, with nothing else to change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from bench_assets.core.config import ConfigError, load_config
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import StoreError
from bench_assets.storage.store import configured_store, store_kind


def not_writable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (tried for real: permissions, a read-only mount, a full disk)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".bench-doctor-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(name)
    return None


def check_storage(paths: DataPaths) -> str | None:
    """None when the data directory and the folders runs write into are usable, else what is wrong."""
    root = paths.root
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        return f"data directory {root} {what}: create it or set BENCH_DATA_DIR"
    suite = paths.default_suite()
    if not suite.is_file():
        return f"no prompt suite at {suite}: copy data/prompts/ from the repository or fix BENCH_PROMPT_SUITE"
    for folder in (root, paths.warehouse, paths.images, paths.cache):
        if folder.exists() and not folder.is_dir():
            return f"{folder} is not a folder: move it aside, runs write into it"
        if folder.is_dir() and (reason := not_writable(folder)):
            return f"cannot write in {folder} ({reason}): fix its permissions or set BENCH_DATA_DIR"
    return check_result_store(paths)


def result_store_url(paths: DataPaths) -> str:
    """Where images and Parquet go (the data directory, or the configured object-store root)."""
    return configured_store(paths, load_config(paths)).url


def check_result_store(paths: DataPaths) -> str | None:
    """The configured store's own check: an object-store root is written, read and deleted once."""
    try:
        store = configured_store(paths, load_config(paths))
    except (ConfigError, StoreError) as exc:
        return str(exc)
    problem = store.check()
    hint = store_kind(store.url).check_hint
    return f"{problem}: {hint}" if problem and hint else problem


def lost_store_check(paths: DataPaths) -> Callable[[], str | None]:
    """For a long run: how to ask, after a failure, whether the result store went away.

    An object store can stop answering mid-run (a stopped server, expired
    credentials); then every later step fails the same way and refreshing
    the leaderboard would read nothing. A folder on this machine does not go
    away: its check is never asked.
    """
    if not store_kind(result_store_url(paths)).remote:
        return lambda: None
    return lambda: check_result_store(paths)
