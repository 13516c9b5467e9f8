"""One writer per partition across processes; a dead holder never blocks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from bench_assets.storage.locks import PartitionBusy, lock_path, partition_lock


def test_second_writer_waits_and_a_killed_holder_releases(tmp_path):
    locks = tmp_path / "locks"
    with partition_lock(locks, "m", "object"):
        with pytest.raises(PartitionBusy, match=r"m/object is being run by pid \d+"):
            with partition_lock(locks, "m", "object", wait=False):
                pass
        with partition_lock(locks, "m", "colour", wait=False):
            pass  # another partition is free

    # A holder in another process killed with SIGKILL: the kernel drops its lock.
    path = lock_path(locks, "m", "object")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PartitionBusy):
            with partition_lock(locks, "m", "object", wait=False):
                pass
        holder.kill()
        holder.wait()
        with partition_lock(locks, "m", "object", wait=False):
            pass
    finally:
        holder.kill()


def test_a_waiting_writer_gets_the_partition_when_the_holder_is_done(tmp_path):
    order: list[str] = []
    release = threading.Event()
    held = threading.Event()

    def first():
        with partition_lock(tmp_path, "m", "object"):
            held.set()
            release.wait(10)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    messages: list[str] = []

    def waiting(message: str) -> None:  # the holder finishes only once the second writer is waiting
        messages.append(message)
        release.set()

    with partition_lock(tmp_path, "m", "object", log=waiting, poll_seconds=0.05):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert len(messages) == 1 and "is being run by pid" in messages[0]
