"""One writer per partition at a time, across processes.

Two ``bench run`` processes, or a daemon run and a headless one, may be asked
for the same model × category. Each partition's work holds an exclusive
``flock`` on ``data/.cache/partition_locks/<model>/<category>.lock`` while it
writes images and rows. The kernel releases the lock when its holder exits,
however it exits (``kill -9`` included), so a dead holder never blocks anyone.
The file records the holder's pid, for the message the next one prints.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from bench_assets.core.errors import BenchError


class PartitionBusy(BenchError, RuntimeError):
    """Another live process holds the partition."""


def lock_path(lock_dir: Path, model: str, category: str) -> Path:
    return Path(lock_dir) / model / f"{category}.lock"


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def partition_lock(
    lock_dir: Path,
    model: str,
    category: str,
    wait: bool = True,
    log: Callable[[str], None] = lambda _: None,
    poll_seconds: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[None]:
    """Hold the partition; ``wait=False`` raises :class:`PartitionBusy` instead of waiting."""
    path = lock_path(lock_dir, model, category)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if not wait:
                    raise PartitionBusy(f"{model}/{category} is being run by {holder}") from None
                if should_stop():
                    raise PartitionBusy(f"stopped while waiting for {model}/{category} ({holder})") from None
                if not announced:
                    log(f"{model}/{category} is being run by {holder}; waiting for it to finish")
                    announced = True
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


LOCKS_FOLDER = "partition_locks"


def partition_lock_dir(cache: Path) -> Path:
    """Where the partition locks of a data directory live (``data/.cache/partition_locks``)."""
    return Path(cache) / LOCKS_FOLDER
