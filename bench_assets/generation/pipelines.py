"""Load a text-to-image pipeline for a model entry, and pick its sampler.

A model that fails to load must fail only its own partition, with a message
that says which file is broken and why; every error on the way out is a
``ModelLoadError`` that starts with the model's path.

Only safetensors weights are read: a pickle checkpoint can run code when
loaded, and models come from anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_assets.core.models import ModelEntry, ModelKind
from bench_assets.core.settings import SAMPLERS

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

DTYPES = ("fp32", "fp16", "bf16")
_DETAIL_MAX = 1000
_SDXL_KEY_PREFIX = "conditioner.embedders.1."  # SDXL's second (OpenCLIP bigG) text encoder


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message starts with its file or folder path."""


def _torch_dtype(dtype: str) -> Any:
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
    return table[dtype]


def _safetensors_keys(path: Path) -> list[str]:
    # Header only: the tensor names are enough to tell SD 1.x from SDXL.
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def _is_sdxl(keys: list[str]) -> bool:
    return any(key.startswith(_SDXL_KEY_PREFIX) for key in keys)


def _load_diffusers_folder(entry: ModelEntry, torch_dtype: Any) -> Any:
    from diffusers import DiffusionPipeline

    kwargs: dict[str, Any] = {}
    index = json.loads((entry.path / "model_index.json").read_text())
    if "safety_checker" in index:  # SD 1.x/2.x; SDXL would warn about an unexpected argument
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return DiffusionPipeline.from_pretrained(
        entry.path, torch_dtype=torch_dtype, use_safetensors=True, local_files_only=True, **kwargs
    )


def _load_single_file(entry: ModelEntry, torch_dtype: Any) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
    if entry.config_sidecar.is_dir():
        kwargs["config"] = str(entry.config_sidecar)
    # Without a sidecar diffusers picks the reference repo's configs (via the user's HF cache).
    if _is_sdxl(_safetensors_keys(entry.path)):
        return StableDiffusionXLPipeline.from_single_file(str(entry.path), **kwargs)
    return StableDiffusionPipeline.from_single_file(
        str(entry.path), safety_checker=None, requires_safety_checker=False, **kwargs
    )


def load_pipeline(entry: ModelEntry, device: str, dtype: str) -> "DiffusionPipeline":
    """The entry's pipeline on ``device`` in ``dtype`` ("fp32", "fp16" or "bf16")."""
    torch_dtype = _torch_dtype(dtype)
    if entry.kind == ModelKind.INVALID:
        raise ModelLoadError(entry.error or f"{entry.path}: not a loadable model")
    try:
        if entry.kind == ModelKind.DIFFUSERS:
            pipe = _load_diffusers_folder(entry, torch_dtype)
        elif entry.kind == ModelKind.SINGLE_FILE:
            pipe = _load_single_file(entry, torch_dtype)
        else:
            raise ValueError(f"unknown model kind {entry.kind!r}")
        pipe = pipe.to(device)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:_DETAIL_MAX]  # one line, for logs and UI metadata
        raise ModelLoadError(
            f"{entry.path}: could not load {entry.kind.value} model: {type(exc).__name__}: {detail}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


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
