"""Stop GPU work between batches, not in the middle of one.

Terminating a run in the Dagster UI sends the step's process SIGINT (SIGTERM
when it has to insist). Left alone, that interrupt lands wherever the step
is: inside a 30-step denoising loop, or between writing a PNG's temporary
file and renaming it. ``stop_between_batches`` defers it: while active, the
signal only sets a flag that the generation loop checks before each batch;
when the block ends, the signal is re-raised to whatever handler was there
before (Dagster's), so the run still ends as cancelled, and every image
already written is complete and counts when the partition is run again.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_between_batches() -> Iterator[Callable[[], bool]]:
    """Yield ``should_stop()``; deliver a deferred stop signal when the block exits.

    Signal handlers can only be installed from the main thread; elsewhere the
    block runs unprotected and ``should_stop`` is always False.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []

    def defer(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, defer) for sig in _SIGNALS}
    try:
        yield lambda: bool(received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])
