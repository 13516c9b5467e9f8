"""What a file or folder dropped into ``data/models/`` is, from its name and header alone.

These are the file kinds' ``detect`` halves (see ``MODEL_KINDS``): each says
whether a path is its kind and, if it is but cannot be used, why, in a
message that names the file and says what to do. Only a safetensors header
is read (8-byte length + JSON), so a sensor tick stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_assets.models.cards import PICKLE_SUFFIXES
from bench_assets.models.checkpoints import CheckpointError, read_safetensors_header

SAFETENSORS = ".safetensors"
# Tensor-name fragments that only LoRA files have (kohya, diffusers/peft, old attn-procs).
LORA_KEY_MARKERS = ("lora_unet_", "lora_te", ".lora_A.", ".lora_B.", "lora_down", "lora_up", "_lora.down.", "_lora.up.")


def _safetensors_header(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(header, None) if ``path``'s safetensors header parses, else (None, why not)."""
    try:
        header = read_safetensors_header(path)
    except CheckpointError as exc:
        return None, str(exc).removeprefix(f"{path}: ")
    if not any(k != "__metadata__" for k in header):
        return None, "not a safetensors file: the header lists no tensors"
    return header, None


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable safetensors file, or None if its header parses."""
    return _safetensors_header(path)[1]


def is_lora_header(header: dict[str, Any]) -> bool:
    """LoRA files are recognised by their tensor names (kohya, peft/diffusers, attn-procs)."""
    return any(marker in key for key in header for marker in LORA_KEY_MARKERS)


def _lora_hint(path: Path) -> str:
    return (
        f"{path}: this is a LoRA (its tensor names are LoRA weights), not a full model; to benchmark it, "
        f"write a card {path.stem}-lora.yaml next to it, e.g. "
        f"`{{base: stabilityai/stable-diffusion-xl-base-1.0, lora: {path.name}, scale: 0.8}}`"
    )


def is_folder(path: Path) -> bool:
    return path.is_dir()


def diffusers_folder_problem(path: Path) -> str | None:
    if (path / "model_index.json").is_file():
        return None
    return f"{path}: folder is not a diffusers pipeline (no model_index.json)"


def is_safetensors_name(path: Path) -> bool:
    """By name only: a dangling ``x.safetensors`` link still counts (and is refused later, by name)."""
    return path.suffix.lower() == SAFETENSORS


def single_file_problem(path: Path) -> str | None:
    """A full-model checkpoint's header parses and is not a LoRA's."""
    header, problem = _safetensors_header(path)
    if problem:
        return f"{path}: {problem}"
    if header is not None and is_lora_header(header):
        return _lora_hint(path)
    return None


def is_pickle_name(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def pickle_refusal(path: Path) -> str:
    """A pickle file is only ever loaded through a card that allows it by name."""
    return (
        f"{path}: refusing a pickle checkpoint ({path.suffix.lower()}); pickle files can run arbitrary "
        "code when loaded. Convert it to .safetensors or, only if you trust its source, allow this one "
        f"file with a card {path.stem}.yaml: `{{checkpoint: {path.name}, allow_pickle: true}}`"
    )
