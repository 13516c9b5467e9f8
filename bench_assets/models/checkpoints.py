"""What a single-file checkpoint is, from its safetensors header alone.

A community checkpoint is one ``.safetensors`` in the original (LDM/CompVis)
layout, with no ``model_index.json`` to say which pipeline it needs. The tensor
names say it: each Stable Diffusion generation has its own text encoder, under
its own prefix. Whether it predicts noise (epsilon) or velocity (v) is not in
the weights' shapes at all, so it comes from the file's metadata, from marker
tensors that community v-prediction checkpoints carry, or from the file name;
sampling a v-model as epsilon gives grey mush, so getting it right matters.

Only the header is read (8-byte length + JSON): no torch, and a 7 GB file
costs a few kilobytes.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench_assets.core.errors import BenchError

SD1 = "sd1"
SD2 = "sd2"
SDXL = "sdxl"
ARCHITECTURES = (SD1, SD2, SDXL)
EPSILON = "epsilon"
V_PREDICTION = "v_prediction"

_HEADER_MAX = 100 * 1024 * 1024
_UNET = "model.diffusion_model."
_SD1_TEXT = "cond_stage_model.transformer.text_model."  # OpenAI CLIP ViT-L/14 (transformers naming)
_SD2_TEXT = "cond_stage_model.model.transformer.resblocks."  # OpenCLIP ViT-H/14
_SDXL_TEXT_L = "conditioner.embedders.0.transformer.text_model."  # CLIP ViT-L/14
_SDXL_TEXT_G = "conditioner.embedders.1.model."  # OpenCLIP ViT-bigG/14
_REFINER_TEXT_G = "conditioner.embedders.0.model."  # the refiner has only bigG, as embedder 0

# Metadata keys and the spellings of their values (safetensors metadata is str -> str).
_MODELSPEC_PREDICTION = "modelspec.prediction_type"  # Stability's model spec
_KOHYA_V = "ss_v_parameterization"  # kohya sd-scripts training metadata
_KOHYA_ZTSNR = "ss_zero_terminal_snr"
PREDICTION_SPELLINGS = {
    "v": V_PREDICTION, "v_prediction": V_PREDICTION, "v-prediction": V_PREDICTION, "vpred": V_PREDICTION,
    "v_pred": V_PREDICTION, "v-pred": V_PREDICTION, "epsilon": EPSILON, "eps": EPSILON,
}
# Empty marker tensors (ComfyUI reads them) in community v-prediction SDXL checkpoints.
_V_PRED_KEY, _ZTSNR_KEY = "v_pred", "ztsnr"
# "v-pred", "v_pred", "vpred", "v-prediction" as a word of the name: not the "v-pred" inside "dev-pred".
_V_PRED_NAME = re.compile(r"(?<![a-z0-9])v[-_ ]?pred(iction)?(?![a-z])", re.IGNORECASE)
_ZTSNR_NAME = re.compile(r"(?<![a-z0-9])(ztsnr|zsnr)(?![a-z])", re.IGNORECASE)


class CheckpointError(BenchError, ValueError):
    """The file is not a checkpoint we can load; the message names it and says what to do."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a single-file checkpoint is and how it must be sampled.

    ``prediction_explicit`` is True when the file itself (metadata, marker
    tensor or name) said which prediction type it has; then that value beats
    any config. When False, ``prediction_type`` is only the default and a
    config that says otherwise (a sidecar's scheduler) should be believed.
    """

    architecture: str  # "sd1", "sd2" or "sdxl"
    prediction_type: str  # "epsilon" or "v_prediction"
    zero_terminal_snr: bool
    prediction_explicit: bool
    reason: str  # why: which tensor names, metadata or name decided it


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The parsed JSON header of a safetensors file (tensor entries + ``__metadata__``)."""
    path = Path(path)
    size = path.stat().st_size
    if size < 8:
        raise CheckpointError(f"{path}: not a safetensors file: only {size} bytes")
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length <= 1 or length > min(_HEADER_MAX, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file: header length {length} does not fit {size} bytes")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{path}: not a safetensors file: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file: its header is not a JSON object")
    return header


def _has_prefix(keys: list[str], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in keys)


# (test on the tensor names, what the file is, what the user should do instead)
_NOT_A_CHECKPOINT: list[tuple[Callable[[list[str]], bool], str, str]] = [
    (lambda keys: any("lora" in key.lower() for key in keys),
     "a LoRA (its tensor names are LoRA weights), not a full model",
     "write a card <name>-lora.yaml: {base: <a model in data/models or a repo id>, lora: <this file>, scale: 0.8}"),
    (lambda keys: _has_prefix(keys, _REFINER_TEXT_G) and not _has_prefix(keys, _SDXL_TEXT_G),
     "an SDXL refiner (OpenCLIP bigG text encoder only), which refines SDXL base images and cannot "
     "generate from text on its own", "benchmark the SDXL base model it belongs to"),
    (lambda keys: _has_prefix(keys, "control_model.") or _has_prefix(keys, "controlnet_cond_embedding."),
     "a ControlNet, which needs a control image", "benchmark the base model instead"),
    (lambda keys: any(k in keys for k in ("emb_params", "string_to_param.*", "clip_l", "clip_g")),
     "a textual-inversion embedding, not a full model", "it cannot be benchmarked on its own"),
    (lambda keys: any(re.match(r"(.*\.)?(double_blocks|joint_blocks)\.", key) for key in keys),
     "a transformer diffusion model (Flux/SD3 family), not SD 1.x/2.x/SDXL",
     "put it in data/models/ as a diffusers folder or a card naming its Hugging Face repo"),
    (lambda keys: not _has_prefix(keys, _UNET) and _has_prefix(keys, "encoder.") and _has_prefix(keys, "decoder."),
     "a VAE on its own, not a full model", "it cannot be benchmarked on its own"),
    (lambda keys: _has_prefix(keys, "down_blocks.") or _has_prefix(keys, "text_model."),
     "one component in diffusers naming (e.g. a UNet or text encoder), not a whole pipeline",
     "put the whole diffusers folder (with model_index.json) in data/models/ instead"),
]


def _architecture(path: Path, keys: list[str]) -> tuple[str, str]:
    """(architecture, why), or a CheckpointError that says what the file is instead."""
    for test, what, todo in _NOT_A_CHECKPOINT:
        if test(keys):
            raise CheckpointError(f"{path}: this is {what}; {todo}")
    if _has_prefix(keys, _UNET):
        if _has_prefix(keys, _SDXL_TEXT_L) and _has_prefix(keys, _SDXL_TEXT_G):
            return SDXL, f"tensors {_SDXL_TEXT_L}* (CLIP-L) and {_SDXL_TEXT_G}* (OpenCLIP bigG)"
        if _has_prefix(keys, _SD2_TEXT):
            return SD2, f"tensors {_SD2_TEXT}* (OpenCLIP ViT-H text encoder)"
        if _has_prefix(keys, _SD1_TEXT):
            return SD1, f"tensors {_SD1_TEXT}* (CLIP ViT-L text encoder)"
    has_unet = "has UNet weights (model.diffusion_model.*)" if _has_prefix(keys, _UNET) else "has no UNet weights"
    sample = ", ".join(sorted(keys)[:3])
    raise CheckpointError(
        f"{path}: not a Stable Diffusion 1.x/2.x/SDXL single-file checkpoint: it {has_unet} and none of the "
        f"text encoders that tell them apart ({_SD1_TEXT}*, {_SD2_TEXT}*, {_SDXL_TEXT_L}* + {_SDXL_TEXT_G}*); "
        f"first tensors: {sample}. Use a diffusers folder or a card naming its Hugging Face repo instead"
    )


def _metadata_prediction(path: Path, metadata: dict[str, Any]) -> tuple[str, str] | None:
    if _MODELSPEC_PREDICTION in metadata:
        value = str(metadata[_MODELSPEC_PREDICTION]).strip().lower()
        if value not in PREDICTION_SPELLINGS:
            raise CheckpointError(
                f"{path}: metadata {_MODELSPEC_PREDICTION}={value!r} is not a prediction type this loader "
                f"knows (one of {sorted(PREDICTION_SPELLINGS)})"
            )
        return PREDICTION_SPELLINGS[value], f"metadata {_MODELSPEC_PREDICTION}={value!r}"
    if str(metadata.get(_KOHYA_V, "")).strip().lower() == "true":
        return V_PREDICTION, f"metadata {_KOHYA_V}=True"
    return None


def _prediction(path: Path, keys: list[str], metadata: dict[str, Any]) -> tuple[str, bool, str]:
    """(prediction type, explicit?, why): metadata first, then marker tensors, then the file name."""
    found = _metadata_prediction(path, metadata)
    if found is not None:
        return found[0], True, found[1]
    if _V_PRED_KEY in keys:
        return V_PREDICTION, True, f"marker tensor {_V_PRED_KEY!r}"
    match = _V_PRED_NAME.search(path.stem)
    if match:
        return V_PREDICTION, True, f"file name contains {match.group(0)!r}"
    return EPSILON, False, "no prediction-type metadata, marker tensor or name: epsilon unless a config says otherwise"


def _zero_terminal_snr(path: Path, keys: list[str], metadata: dict[str, Any]) -> tuple[bool, str]:
    if _ZTSNR_KEY in keys:
        return True, f"marker tensor {_ZTSNR_KEY!r}"
    if str(metadata.get(_KOHYA_ZTSNR, "")).strip().lower() == "true":
        return True, f"metadata {_KOHYA_ZTSNR}=True"
    match = _ZTSNR_NAME.search(path.stem)
    if match:
        return True, f"file name contains {match.group(0)!r}"
    return False, ""


def detect_checkpoint(path: Path) -> CheckpointInfo:
    """Architecture and prediction type of the single-file checkpoint at ``path``.

    Raises ``CheckpointError`` naming the file and saying what it is (a LoRA,
    an SDXL refiner, ...) when it is not an SD 1.x/2.x/SDXL checkpoint.
    """
    path = Path(path)
    header = read_safetensors_header(path)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: its __metadata__ is not a JSON object")
    keys = [key for key in header if key != "__metadata__"]
    if not keys:
        raise CheckpointError(f"{path}: not a safetensors file: the header lists no tensors")
    architecture, arch_why = _architecture(path, keys)
    prediction, explicit, prediction_why = _prediction(path, keys, metadata)
    ztsnr, ztsnr_why = _zero_terminal_snr(path, keys, metadata)
    reasons = [f"{architecture} from {arch_why}", f"{prediction}: {prediction_why}"]
    if ztsnr:
        reasons.append(f"zero terminal SNR: {ztsnr_why}")
    return CheckpointInfo(architecture, prediction, ztsnr, explicit, "; ".join(reasons))
