"""Diffusers → original (LDM/CompVis) single-file layout for SD 1.x pipelines.

Most community fine-tunes are shared as one ``.safetensors`` in the original
Stable Diffusion layout, not as diffusers folders. To test that loading path
without downloading anything, we write tiny models in that layout ourselves.
This is the inverse of diffusers' ``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint`` and ``convert_ldm_clip_checkpoint``
(``diffusers.loaders.single_file_utils``); a test checks that their forward
conversion gives back exactly the state dicts we started from.

Every tensor must be claimed by a rule: an unknown key raises instead of being
dropped, so the conversion is exact or fails loudly.
"""

from __future__ import annotations

from typing import Any

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

# diffusers ResnetBlock2D part -> LDM ResBlock part
_UNET_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
# diffusers Attention part (VAE mid block) -> LDM AttnBlock part
_VAE_ATTENTION_PARTS = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}

# (diffusers prefix, LDM prefix, how the rest of the key is renamed)
_Rule = tuple[str, str, dict[str, str] | None]


def _rename(key: str, rules: list[_Rule]) -> str:
    """Apply the matching prefix rule; its part map renames the segment after the prefix.

    Prefixes end with a dot, so at most one rule matches a key.
    """
    for src, dst, parts in rules:
        if not key.startswith(src):
            continue
        rest = key[len(src) :]
        for old, new in (parts or {}).items():
            if rest.startswith(old + "."):
                rest = new + rest[len(old) :]
                break
        return dst + rest
    raise KeyError(key)


def _unet_rules(config: Any) -> list[_Rule]:
    per_block = config.layers_per_block
    if not isinstance(per_block, int):
        raise NotImplementedError(
            f"UNet with per-block layers_per_block={per_block!r} has no single-file layout here"
        )
    stride = per_block + 1  # resnets (+ downsampler) per down level in LDM's flat numbering
    rules: list[_Rule] = [
        ("time_embedding.linear_1.", "time_embed.0.", None),
        ("time_embedding.linear_2.", "time_embed.2.", None),
        ("conv_in.", "input_blocks.0.0.", None),
        ("conv_norm_out.", "out.0.", None),
        ("conv_out.", "out.2.", None),
        ("mid_block.resnets.0.", "middle_block.0.", _UNET_RESNET_PARTS),
        ("mid_block.attentions.0.", "middle_block.1.", None),
        ("mid_block.resnets.1.", "middle_block.2.", _UNET_RESNET_PARTS),
    ]
    for i, _ in enumerate(config.down_block_types):
        for j in range(per_block):
            ldm = stride * i + j + 1
            rules.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{ldm}.0.", _UNET_RESNET_PARTS))
            rules.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{ldm}.1.", None))
        rules.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{stride * (i + 1)}.0.op.", None))
    for i, block_type in enumerate(config.up_block_types):
        for j in range(stride):  # up blocks have one resnet more than down blocks
            ldm = stride * i + j
            rules.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{ldm}.0.", _UNET_RESNET_PARTS))
            rules.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{ldm}.1.", None))
        # The upsampler follows the last layer's resnet, and its attention if the block has one.
        last = f"output_blocks.{stride * i + per_block}"
        slot = 2 if "CrossAttn" in block_type else 1
        rules.append((f"up_blocks.{i}.upsamplers.0.conv.", f"{last}.{slot}.conv.", None))
    return rules


def _vae_rules(config: Any) -> list[_Rule]:
    resnet_parts = {"conv_shortcut": "nin_shortcut"}
    rules: list[_Rule] = [
        ("encoder.conv_norm_out.", "encoder.norm_out.", None),
        ("decoder.conv_norm_out.", "decoder.norm_out.", None),
    ]
    for name in ("encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.", "decoder.conv_out.",
                 "quant_conv.", "post_quant_conv."):
        rules.append((name, name, None))
    for part in ("encoder", "decoder"):
        rules.append((f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", resnet_parts))
        rules.append((f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", resnet_parts))
        rules.append((f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", _VAE_ATTENTION_PARTS))
    per_block = config.layers_per_block
    for i in range(len(config.down_block_types)):
        for j in range(per_block):
            rules.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", resnet_parts))
        rules.append((f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv.", None))
    levels = len(config.up_block_types)
    for i in range(levels):
        ldm = levels - 1 - i  # LDM numbers decoder levels from the lowest resolution up
        for j in range(per_block + 1):
            rules.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{ldm}.block.{j}.", resnet_parts))
        rules.append((f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{ldm}.upsample.conv.", None))
    return rules


def _convert(
    state: dict[str, torch.Tensor], rules: list[_Rule], prefix: str, what: str
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        try:
            new = _rename(key, rules)
        except KeyError:
            raise NotImplementedError(f"{what}: no single-file name for tensor {key!r}") from None
        out[prefix + new] = tensor.detach().to("cpu").contiguous()
    return out


def _reject_unsupported(pipe: Any) -> None:
    if getattr(pipe, "text_encoder_2", None) is not None or getattr(
        getattr(pipe, "unet", None), "config", {}
    ).get("addition_embed_type"):
        raise NotImplementedError(
            "SDXL pipelines cannot be written as a single file yet; only SD 1.x-shaped pipelines are supported"
        )
    for part in ("unet", "vae", "text_encoder"):
        if getattr(pipe, part, None) is None:
            raise NotImplementedError(f"{type(pipe).__name__} has no {part}; expected an SD 1.x pipeline")


def diffusers_to_ldm_state_dict(pipe: Any) -> dict[str, torch.Tensor]:
    """One state dict in the original SD 1.x single-file layout, for ``pipe``'s three models."""
    _reject_unsupported(pipe)
    result = _convert(pipe.unet.state_dict(), _unet_rules(pipe.unet.config), UNET_PREFIX, "unet")

    vae = _convert(pipe.vae.state_dict(), _vae_rules(pipe.vae.config), VAE_PREFIX, "vae")
    for key, tensor in vae.items():
        # LDM's AttnBlock uses 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in key and key.endswith(".weight") and tensor.ndim == 2:
            vae[key] = tensor.reshape(*tensor.shape, 1, 1)
    result.update(vae)

    for key, tensor in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.`` level); the file keeps it.
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        result[CLIP_PREFIX + name] = tensor.detach().to("cpu").contiguous()
    return result
