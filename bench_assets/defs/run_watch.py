"""Follow the run's status from inside a long step.

Terminating a run in the UI marks it CANCELING and interrupts the process;
*force*-terminating marks it CANCELED and nothing more, so a step deep in GPU
work would keep running and keep its ``gpu`` pool slot while every queued
run waits. A watcher thread polls the run's status in the instance:

- CANCELING: ask the step to stop between batches (also where no signal
  arrives, e.g. a step waiting on the Modal backend);
- CANCELED or FAILURE while this step still runs (force-terminate, or run
  monitoring declared it dead): free the run's concurrency slots and end the
  process at once, so the slot and the GPU go to the next run.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import dagster as dg

POLL_SECONDS = 1.0
FORCE_EXIT_CODE = 143  # as if killed by SIGTERM


def free_run_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    """Release every pool slot the run holds (a no-op where it holds none)."""
    storage = instance.event_log_storage
    if getattr(storage, "supports_global_concurrency_limits", False):
        storage.free_concurrency_slots_for_run(run_id)


@contextmanager
def watch_run(
    instance: dg.DagsterInstance,
    run_id: str,
    exit_process: Callable[[int], None] = os._exit,
    poll_seconds: float = POLL_SECONDS,
) -> Iterator[Callable[[], bool]]:
    """Yield ``cancel_requested()``; end the process if the run is force-terminated."""
    cancel = threading.Event()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(poll_seconds):
            run = instance.get_run_by_id(run_id)
            if run is None:
                continue
            if run.status == dg.DagsterRunStatus.CANCELING:
                cancel.set()
            elif run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE):
                cancel.set()
                free_run_slots(instance, run_id)
                exit_process(FORCE_EXIT_CODE)
                return

    watcher = threading.Thread(target=poll, name=f"watch-run-{run_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield cancel.is_set
    finally:
        done.set()
        watcher.join(timeout=poll_seconds * 5)
