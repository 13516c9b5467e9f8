"""How a pipeline runs on the hardware: the speed and memory knobs.

None of these change which image a seed gives beyond kernel-level rounding
(they are not part of an image set's fingerprint), so they are set per
machine in ``data/config.yaml``'s ``compute:`` section, not per model.

- ``attention``: "sdpa" (PyTorch's fused scaled-dot-product attention, the
  fastest on any recent GPU) or "eager" (the plain matmul-softmax reference).
- ``compile``: ``torch.compile`` the UNet (first batch pays minutes of
  compilation; worth it from a few hundred images on).
- ``vae_tiling`` / ``vae_slicing``: decode large images tile by tile / a
  batch one image at a time, trading a little time for a lot of memory.
- ``cpu_offload``: "model" keeps only the active component on the GPU (an
  SDXL fits 8 GB); "sequential" offloads layer by layer (fits almost
  anything, very slow); "none".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ATTENTION = ("sdpa", "eager")
OFFLOAD = ("none", "model", "sequential")


@dataclass(frozen=True)
class RuntimeOptions:
    attention: str = "sdpa"
    compile: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: str = "none"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION:
            raise ValueError(f"attention {self.attention!r} is not one of {ATTENTION}")
        if self.cpu_offload not in OFFLOAD:
            raise ValueError(f"cpu_offload {self.cpu_offload!r} is not one of {OFFLOAD}")

    @property
    def offloaded(self) -> bool:
        return self.cpu_offload != "none"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _set_attention(pipe: Any, attention: str) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processor = AttnProcessor2_0() if attention == "sdpa" else AttnProcessor()
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    for module in (denoiser, getattr(pipe, "vae", None)):
        if module is not None and hasattr(module, "set_attn_processor"):
            module.set_attn_processor(processor)


def apply_runtime(pipe: Any, options: RuntimeOptions, device: str) -> Any:
    """Place ``pipe`` on ``device`` the way ``options`` ask; return the pipeline to call."""
    import torch

    _set_attention(pipe, options.attention)
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        (vae.enable_tiling if options.vae_tiling else vae.disable_tiling)()
        (vae.enable_slicing if options.vae_slicing else vae.disable_slicing)()
    if options.offloaded:
        if not device.startswith("cuda"):
            raise ValueError(f"cpu_offload={options.cpu_offload!r} needs a CUDA device, not {device!r}")
        gpu_id = torch.device(device).index or 0
        if options.cpu_offload == "model":
            pipe.enable_model_cpu_offload(gpu_id=gpu_id)
        else:
            pipe.enable_sequential_cpu_offload(gpu_id=gpu_id)
    else:
        pipe.to(device)
    unet = getattr(pipe, "unet", None)
    if unet is not None and options.channels_last:
        unet.to(memory_format=torch.channels_last)
    if unet is not None and options.compile:
        pipe.unet = torch.compile(unet, mode="max-autotune-no-cudagraphs", fullgraph=False)
    return pipe
