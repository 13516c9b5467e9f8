"""Which GPUs this machine has, and which of them a step may use.

Dagster's ``gpu`` pool caps how many GPU steps run at once (sized to the GPU
count, see ``instance_config``), but a pool slot does not say *which* GPU is
free. A ``DeviceLease`` does: each GPU has a lock file, a step takes the
first free one (or several, for a model that asks for ``gpus: 2``) and holds
it until the step ends. The locks are ``flock`` locks, so a step that crashes
or is killed releases its GPU with its process; nothing has to clean up.

No torch at import time: the Dagster definitions import this module.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bench_assets.core.errors import BenchError
from bench_assets.generation.pipelines import resolve_device

Log = Callable[[str], None]
_BYTES_PER_GB = 1024**3


class DeviceError(BenchError, RuntimeError):
    """The request cannot be met on this machine; the message says what to change."""


def gpu_count() -> int:
    """GPUs visible to this machine's steps, without importing torch.

    ``BENCH_GPUS`` wins (useful to reserve GPUs for something else), then
    ``CUDA_VISIBLE_DEVICES``, then ``nvidia-smi -L``; 0 when there is no NVIDIA GPU.
    """
    override = os.environ.get("BENCH_GPUS")
    if override:
        return int(override)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in out.stdout.splitlines() if line.startswith("GPU ")])


def cuda_memory_gb(indices: Sequence[int]) -> list[float]:
    """Total memory of each CUDA device, in GiB."""
    import torch

    return [torch.cuda.get_device_properties(i).total_memory / _BYTES_PER_GB for i in indices]


@dataclass
class DeviceLease:
    """Exclusive use of some GPUs for one step. Release it (or use ``with``) when done."""

    indices: tuple[int, ...]
    waited_seconds: float = 0.0
    _handles: list = field(default_factory=list, repr=False)

    @property
    def device(self) -> str:
        """The torch device of the step's first GPU."""
        return f"cuda:{self.indices[0]}"

    def release(self) -> None:
        for handle in self._handles:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self._handles.clear()

    def __enter__(self) -> "DeviceLease":
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _try_lock(path: Path):
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def acquire_devices(
    lock_dir: Path,
    n_devices: int,
    need: int = 1,
    timeout_s: float = 24 * 3600,
    poll_s: float = 0.5,
    log: Log = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeviceLease:
    """Block until ``need`` GPUs out of ``n_devices`` are free, then hold them.

    Takes all ``need`` locks or none, so two 2-GPU steps on 4 GPUs never
    deadlock holding one each. Lower indices first, so a lone step lands on GPU 0.
    """
    if need > n_devices:
        raise DeviceError(
            f"the model asks for {need} GPU(s) but this machine has {n_devices}; "
            "lower 'gpus' in its settings or run it on a bigger machine (BENCH_COMPUTE=modal)"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    announced = False
    while True:
        held: list[tuple[int, object]] = []
        for index in range(n_devices):
            handle = _try_lock(lock_dir / f"gpu{index}.lock")
            if handle is not None:
                held.append((index, handle))
                if len(held) == need:
                    waited = time.monotonic() - started
                    return DeviceLease(tuple(i for i, _ in held), waited, [h for _, h in held])
        for _, handle in held:  # all or none
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        waited = time.monotonic() - started
        if should_stop():
            raise DeviceError("stopped while waiting for a GPU")
        if waited > timeout_s:
            raise DeviceError(f"no {need} free GPU(s) out of {n_devices} after {waited:.0f} s")
        if not announced:
            log(f"waiting for {need} free GPU(s) out of {n_devices}")
            announced = True
        time.sleep(poll_s)


def check_fits(
    model_name: str,
    need_gb: float,
    device_gb: Sequence[float],
    min_gb: float = 0.0,
) -> None:
    """Refuse, before loading, a model that cannot fit its GPU.

    ``need_gb`` is an estimate (weights at the run's precision plus working
    memory); ``min_gb`` is what the model's settings demand per GPU.
    """
    smallest = min(device_gb) if device_gb else 0.0
    if min_gb and smallest < min_gb:
        raise DeviceError(
            f"{model_name}: needs GPUs with at least {min_gb:g} GiB (min_gpu_memory_gb) but the "
            f"leased GPU has {smallest:.1f} GiB"
        )
    # The pipeline runs on the first leased GPU; extra leased GPUs are reserved, not split into.
    first = device_gb[0] if device_gb else 0.0
    if need_gb > first:
        raise DeviceError(
            f"{model_name}: needs about {need_gb:.1f} GiB of GPU memory but its GPU has "
            f"{first:.1f} GiB; lower batch_size or resolution, turn on cpu_offload or vae_tiling "
            "in the compute config, or run it on Modal (BENCH_COMPUTE=modal)"
        )


def estimate_generation_gb(weights_bytes: int, weights_bits: int, dtype: str, batch_size: int,
                           width: int, height: int) -> float:
    """Weights at the run's precision plus a working-memory allowance.

    The allowance grows with pixels × batch (attention and VAE decode
    activations) and was calibrated so SDXL at 1024², batch 4, fp16 comes out
    near the ~14 GiB it uses in practice; it is a guard against hopeless
    cases, not a promise.
    """
    target_bits = 32 if dtype == "fp32" else 16
    weights_gb = weights_bytes * target_bits / weights_bits / _BYTES_PER_GB
    megapixels = width * height / 1e6
    working_gb = 1.0 + 1.7 * megapixels * batch_size * (target_bits / 16)
    return weights_gb + working_gb


def describe_local_device(preference: str = "auto") -> str:
    """The device a local step would run on, for ``bench doctor``: ``cuda (2 GPU(s): NVIDIA H100 ...)``.

    Raises ``DeviceError`` when the machine and torch disagree (GPUs listed
    but a CPU-only torch: every step would crawl on the CPU without a word)
    or the pinned device is missing.
    """
    import torch

    try:
        device = resolve_device(preference)
    except RuntimeError as exc:
        raise DeviceError(f"{exc}: set compute.device in data/config.yaml to 'auto' or a device this machine has"
                          ) from None
    if device.startswith("cuda"):
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"cuda ({torch.cuda.device_count()} GPU(s): {', '.join(names)}; torch {torch.__version__})"
    listed = gpu_count()
    if listed and preference == "auto":
        raise DeviceError(f"{listed} NVIDIA GPU(s) listed but torch {torch.__version__} cannot use CUDA: install "
                          "a CUDA build of torch, or set BENCH_GPUS=0 to run on the CPU on purpose")
    if device == "cpu":
        return "cpu (no GPU found: generation is slow; BENCH_COMPUTE=modal runs it on H100s)"
    return device
