"""Generation settings and the fingerprint of an image set.

Defaults fit SDXL (1024², 30 steps, Euler, CFG 5). A model can carry its own
overrides in a sidecar ``<name>.settings.yaml`` (an SD 1.5 finetune wants
512²), and Dagster config can change the defaults for a run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from bench_assets.core.errors import BenchError

SAMPLERS = ("default", "euler", "euler_a", "ddim", "pndm", "dpmpp_2m", "dpmpp_2m_karras")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
PREDICTION_TYPES = (None, "epsilon", "v_prediction")

# Fields that change pixels. Batch size and images-per-prompt don't: adding
# images to a prompt extends the same set instead of starting a new one.
_SET_FIELDS = ("sampler", "steps", "guidance_scale", "width", "height", "base_seed")


class SettingsError(BenchError, ValueError):
    """Settings are invalid; the message names where they came from."""


@dataclass(frozen=True)
class GenerationSettings:
    sampler: str = "euler"
    steps: int = 30
    guidance_scale: float = 5.0
    width: int = 1024
    height: int = 1024
    images_per_prompt: int = 4
    base_seed: int = 0
    batch_size: int = 4
    precision: str = "auto"
    # Overrides what the checkpoint says (file metadata, name, config): "epsilon" or "v_prediction".
    prediction_type: str | None = None
    # What the model needs from the hardware; checked before loading, never part of the set.
    gpus: int = 1
    min_gpu_memory_gb: float = 0.0

    def __post_init__(self) -> None:
        self.validate("settings")

    def validate(self, source: str) -> None:
        problems = []
        if self.sampler not in SAMPLERS:
            problems.append(f"sampler {self.sampler!r} is not one of {SAMPLERS}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} is not one of {PRECISIONS}")
        for name in ("steps", "images_per_prompt", "batch_size", "gpus"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1")
        for name in ("width", "height"):
            value = int(getattr(self, name))
            if value < 8 or value % 8:
                problems.append(f"{name} must be a positive multiple of 8, got {value}")
        if self.prediction_type not in PREDICTION_TYPES:
            problems.append(f"prediction_type {self.prediction_type!r} is not one of {PREDICTION_TYPES}")
        if self.min_gpu_memory_gb < 0:
            problems.append("min_gpu_memory_gb must be >= 0")
        if self.base_seed < 0:
            problems.append("base_seed must be >= 0")
        if problems:
            raise SettingsError(f"{source}: " + "; ".join(problems))

    def with_overrides(self, overrides: dict[str, Any], source: str) -> "GenerationSettings":
        """Apply overrides (e.g. from a model's sidecar file), naming the source on error."""
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise SettingsError(f"{source}: unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            result = replace(self, **overrides)
        except SettingsError as exc:
            raise SettingsError(f"{source}: {exc}") from None
        return result

    def seed(self, image_index: int) -> int:
        """Seed k of every prompt: the same sequence for every prompt and model."""
        return self.base_seed + image_index

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checked_overrides(raw: Any, where: str) -> dict[str, Any]:
    """Settings from a file (a suite's or ``data/config.yaml``'s ``generation:``), checked field by field.

    ``with_overrides`` checks names and ranges; the types are checked here so
    that ``steps: "20"`` or ``steps: 2.5`` fail instead of slipping through.
    """
    if not isinstance(raw, dict):
        raise SettingsError(f"{where} must be a mapping of settings, e.g. {{steps: 20}}")
    defaults = GenerationSettings()
    known = {f.name for f in fields(defaults)}
    for key, value in raw.items():
        default = getattr(defaults, key, None) if key in known else None
        expected = type(default) if default is not None else None  # unknown names: with_overrides says so
        ok = expected is None or (isinstance(value, expected) and not isinstance(value, bool)) or (
            expected is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise SettingsError(f"{where}.{key} must be {expected.__name__}, got {value!r}")
    defaults.with_overrides(raw, source=where)
    return dict(raw)


def set_fields(settings: GenerationSettings) -> dict[str, Any]:
    """The settings that change pixels (what a set fingerprint covers, dtype aside).

    ``prediction_type`` counts only when set, so sets made before it existed keep their identity.
    """
    fields_ = {name: getattr(settings, name) for name in _SET_FIELDS}
    if settings.prediction_type is not None:
        fields_["prediction_type"] = settings.prediction_type
    return fields_


def set_fingerprint(model_fingerprint: str, settings: GenerationSettings, dtype: str) -> str:
    """Identity of an image set: the weights plus everything that changes pixels.

    ``dtype`` is the resolved precision (fp16 on a GPU and fp32 on a CPU give
    different pixels, so they are different sets).
    """
    payload = set_fields(settings)
    payload["model"] = model_fingerprint
    payload["dtype"] = dtype
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
