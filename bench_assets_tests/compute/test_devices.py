"""GPU leases with simulated device counts, the fit check, and the GPU-sized instance config."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from bench_assets.compute.devices import DeviceError, acquire_devices, check_fits, estimate_generation_gb, gpu_count
from bench_assets.defs.instance_config import gpu_pool_size, render_instance_config, write_instance_config

REPO = Path(__file__).resolve().parents[2]


def _gpu_step(lock_dir: str, n_devices: int, need: int, hold_s: float, log_file: str, holding, peak) -> None:
    """One simulated GPU step: lease, record the interval it held which devices, release.

    With ``peak`` (an event) a step holds its lease until ``peak`` is set, which
    the step that makes ``holding`` reach the target sets: parallelism is then
    shown by synchronisation, not by hoping process start-up is fast enough.
    """
    lease = acquire_devices(Path(lock_dir), n_devices, need, poll_s=0.02)
    start = time.monotonic()
    if peak is not None:
        with holding.get_lock():
            holding.value += 1
            if holding.value >= holding.target:
                peak.set()
        peak.wait(timeout=30)  # a lease that serialised the steps would time out here, and fail the test
    time.sleep(hold_s)
    end = time.monotonic()
    lease.release()
    with open(log_file, "a") as handle:
        handle.write(json.dumps({"devices": list(lease.indices), "start": start, "end": end}) + "\n")


def _run_steps(tmp_path: Path, n_devices: int, needs: list[int], hold_s: float,
               hold_until: int | None = None) -> list[dict]:
    """Run one process per step; with ``hold_until`` the first steps hold until that many hold at once."""
    ctx = mp.get_context("fork")
    log_file = tmp_path / "intervals.jsonl"
    holding, peak = ctx.Value("i", 0), (ctx.Event() if hold_until else None)
    holding.target = hold_until or 0
    procs = [ctx.Process(target=_gpu_step, args=(str(tmp_path / "locks"), n_devices, need, hold_s, str(log_file),
                                                 holding, peak))
             for need in needs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return [json.loads(line) for line in log_file.read_text().splitlines()]


def _overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_six_steps_on_four_gpus_never_share_a_device_and_all_finish(tmp_path):
    intervals = _run_steps(tmp_path, n_devices=4, needs=[1] * 6, hold_s=0.05, hold_until=4)
    assert len(intervals) == 6, "every step finished"
    for i, a in enumerate(intervals):
        for b in intervals[i + 1:]:
            if set(a["devices"]) & set(b["devices"]):
                assert not _overlaps(a, b), f"two steps held GPU {a['devices']} at once"
    assert {d for iv in intervals for d in iv["devices"]} == {0, 1, 2, 3}, "all four GPUs were used"
    # 6 steps on 4 devices: at some moment 4 ran at once (parallelism, not a global lock)
    peak = max(sum(_overlaps(a, b) for b in intervals) for a in intervals)
    assert peak >= 4


def test_two_gpu_steps_take_pairs_without_deadlock(tmp_path):
    intervals = _run_steps(tmp_path, n_devices=4, needs=[2, 2, 2, 1, 1], hold_s=0.3)
    assert len(intervals) == 5
    assert sorted(len(iv["devices"]) for iv in intervals) == [1, 1, 2, 2, 2]
    for i, a in enumerate(intervals):
        for b in intervals[i + 1:]:
            if set(a["devices"]) & set(b["devices"]):
                assert not _overlaps(a, b)


def test_lease_is_released_when_its_process_dies(tmp_path):
    ctx = mp.get_context("fork")
    holding = ctx.Event()
    proc = ctx.Process(target=_hold_forever, args=(str(tmp_path / "locks"), holding))
    proc.start()
    assert holding.wait(timeout=60), "the child took its lease"
    with pytest.raises(DeviceError, match="no 1 free GPU"):
        acquire_devices(tmp_path / "locks", 1, timeout_s=0.3, poll_s=0.05)
    proc.kill()
    proc.join()
    with acquire_devices(tmp_path / "locks", 1, timeout_s=5) as lease:
        assert lease.indices == (0,)


def _hold_forever(lock_dir: str, holding) -> None:
    with acquire_devices(Path(lock_dir), 1):
        holding.set()
        time.sleep(60)


def test_asking_for_more_gpus_than_exist_is_a_clear_error(tmp_path):
    with pytest.raises(DeviceError, match="asks for 3 GPU.*has 2"):
        acquire_devices(tmp_path, n_devices=2, need=3)


def test_fit_check_refuses_before_loading():
    sdxl_fp16 = estimate_generation_gb(6_900_000_000, 16, "fp16", batch_size=4, width=1024, height=1024)
    assert 10 < sdxl_fp16 < 20
    check_fits("sdxl.safetensors", sdxl_fp16, [80.0])
    with pytest.raises(DeviceError, match=r"sdxl.safetensors: needs about .* GiB .* has 8.0 GiB.*cpu_offload"):
        check_fits("sdxl.safetensors", sdxl_fp16, [8.0])
    with pytest.raises(DeviceError, match="has 8.0 GiB"):
        check_fits("sdxl.safetensors", sdxl_fp16, [8.0, 80.0]), "the pipeline runs on the first GPU only"
    with pytest.raises(DeviceError, match="at least 40 GiB"):
        check_fits("big", 1.0, [24.0], min_gb=40)
    # fp32 weights halve at fp16; fp32 runs double the working memory
    assert estimate_generation_gb(4 << 30, 32, "fp16", 1, 512, 512) < estimate_generation_gb(4 << 30, 32, "fp32", 1, 512, 512)


def test_gpu_count_honours_overrides(monkeypatch):
    monkeypatch.setenv("BENCH_GPUS", "3")
    assert gpu_count() == 3
    monkeypatch.delenv("BENCH_GPUS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert gpu_count() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_count() == 0


def test_instance_config_sizes_the_gpu_pool(tmp_path, monkeypatch):
    import dagster as dg

    from bench_assets.core.config import BenchConfig

    template = (REPO / "dagster.yaml").read_text()
    with pytest.raises(ValueError, match="at least one slot"):
        render_instance_config(template, 0)
    rendered = render_instance_config(template, 4)
    assert "default_limit: 4" in rendered and "max_concurrent_runs: 4" in rendered
    assert "tag_concurrency_limits" in rendered, "the rest of the template is kept"

    monkeypatch.delenv("BENCH_COMPUTE", raising=False)
    monkeypatch.setenv("BENCH_GPUS", "0")
    assert gpu_pool_size(BenchConfig()).slots == 1, "a CPU-only machine still runs one GPU-pool step"
    monkeypatch.setenv("BENCH_GPUS", "4")
    home = tmp_path / "home"
    _, pool = write_instance_config(REPO / "dagster.yaml", home, BenchConfig())
    assert pool.slots == 4
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    finally:
        instance.dispose()
