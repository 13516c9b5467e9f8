"""A stop request (SIGINT from the Dagster UI) takes effect between batches, never inside one."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bench_assets.compute.interrupts import stop_between_batches


def test_signal_is_deferred_then_delivered_to_the_previous_handler():
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with stop_between_batches() as should_stop:
            assert not should_stop()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            seen.append("block kept running")
            assert should_stop()
    assert seen == ["block kept running"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "previous handler restored"


def test_no_signal_means_no_interrupt_and_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    with stop_between_batches() as should_stop:
        pass
    assert not should_stop()
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_it_is_a_no_op():
    results = []

    def worker():
        with stop_between_batches() as should_stop:
            results.append(should_stop())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert results == [False]
