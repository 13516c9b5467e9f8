"""Load a text-to-image pipeline for a model entry, and pick its sampler.

How each kind loads is its row of ``MODEL_KINDS`` (``models/kinds.py``, the
loaders in ``models/loaders.py``); this module holds what is common to every
kind: the dtype, the one call through the table, the device, the sampler.

A model that fails to load must fail only its own partition, with a message
that says which file is broken and why; every error on the way out is a
``ModelLoadError`` that starts with the model's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench_assets.core.errors import BenchError
from bench_assets.core.settings import SAMPLERS
from bench_assets.models.entry import ModelEntry
from bench_assets.models.kinds import model_kind
from bench_assets.models.loaders import Loader

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

DTYPES = ("fp32", "fp16", "bf16")
_DETAIL_MAX = 1000


class ModelLoadError(BenchError, RuntimeError):
    """A model could not be loaded; the message starts with its file or folder path."""


def _torch_dtype(dtype: str) -> Any:
    import torch  # heavy: only when a pipeline is really loaded

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
    return table[dtype]


def load_pipeline(entry: ModelEntry, device: str, dtype: str) -> "DiffusionPipeline":
    """The entry's pipeline on ``device`` in ``dtype`` ("fp32", "fp16" or "bf16"), loaded by its kind's row."""
    torch_dtype = _torch_dtype(dtype)
    if entry.error:  # a broken entry is never read, whatever kind it tried to be
        raise ModelLoadError(entry.error)
    try:
        pipe = _loader(entry)(entry, torch_dtype).to(device)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:_DETAIL_MAX]  # one line, for logs and UI metadata
        raise ModelLoadError(
            f"{entry.path}: could not load {entry.kind} model: {type(exc).__name__}: {detail}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _loader(entry: ModelEntry) -> Loader:
    row = model_kind(entry.kind)
    if row.load is None:
        raise ValueError(f"an entry of kind {entry.kind!r} has no pipeline: its images are ingested, not generated")
    return row.load


def _sampler_class_and_options(sampler: str) -> tuple[Any, dict[str, Any]]:
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        PNDMScheduler,
    )

    # Options are explicit so that a model shipping, say, DPM++ SDE Karras as its
    # default still gets plain DPM++ 2M when asked for "dpmpp_2m".
    dpmpp = {"algorithm_type": "dpmsolver++", "solver_order": 2}
    table: dict[str, tuple[Any, dict[str, Any]]] = {
        "euler": (EulerDiscreteScheduler, {"use_karras_sigmas": False}),
        "euler_a": (EulerAncestralDiscreteScheduler, {}),
        "ddim": (DDIMScheduler, {}),
        "pndm": (PNDMScheduler, {}),
        "dpmpp_2m": (DPMSolverMultistepScheduler, {**dpmpp, "use_karras_sigmas": False}),
        "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {**dpmpp, "use_karras_sigmas": True}),
    }
    return table[sampler]


def apply_sampler(pipe: Any, sampler: str) -> None:
    """Swap the pipeline's scheduler for ``sampler``, keeping its noise schedule.

    "default" keeps whatever scheduler the model ships with.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")
    if sampler == "default":
        return
    cls, options = _sampler_class_and_options(sampler)
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **options)


def resolve_device(preference: str = "auto") -> str:
    """"auto" picks cuda, then mps, then cpu; an explicit device must be available."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_ok else "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} was asked for but CUDA is not available")
    if preference == "mps" and not mps_ok:
        raise RuntimeError("device 'mps' was asked for but MPS is not available")
    return preference


def resolve_dtype(precision: str, device: str) -> str:
    """"auto" is fp16 on CUDA and fp32 elsewhere (fp16 on CPU is slow and fragile)."""
    if precision == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is not one of ('auto', {', '.join(map(repr, DTYPES))})")
    return precision
