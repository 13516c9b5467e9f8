"""Diffusers → original (LDM/CompVis/SGM) single-file layout for SD 1.x, SD 2.x and SDXL.

Most community fine-tunes are shared as one ``.safetensors`` in the original
Stable Diffusion layout, not as diffusers folders. To test that loading path
without downloading anything, we write tiny models in that layout ourselves.
This is the inverse of what diffusers' single-file loader reads
(``diffusers.loaders.single_file_utils``): ``convert_ldm_unet_checkpoint``
(with SDXL's ``label_emb`` add-embedding), ``convert_ldm_vae_checkpoint``,
``convert_ldm_clip_checkpoint`` (OpenAI CLIP: SD 1.x, SDXL's first encoder)
and ``convert_open_clip_checkpoint`` (OpenCLIP: SD 2.x, SDXL's second
encoder, with q/k/v merged into one ``in_proj``); tests check that their
forward conversion gives back exactly the state dicts we started from.

Every tensor must be claimed by a rule: an unknown key raises instead of being
dropped, so the conversion is exact or fails loudly.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from bench_assets.models.checkpoints import SD1, SD2, SDXL

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # SD 1.x: OpenAI CLIP ViT-L, transformers naming
OPEN_CLIP_PREFIX = "cond_stage_model.model."  # SD 2.x: OpenCLIP ViT-H
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."  # SDXL: OpenAI CLIP ViT-L
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."  # SDXL: OpenCLIP ViT-bigG (with projection)

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

# transformers CLIP tensor (``text_model.`` level removed) -> OpenCLIP tensor
_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
# transformers CLIPEncoderLayer part -> OpenCLIP ResidualAttentionBlock part (q/k/v are merged apart)
_OPEN_CLIP_LAYER_PARTS = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}
_OPEN_CLIP_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
_QKV = re.compile(r"self_attn\.([qkv])_proj\.(weight|bias)")

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
        # SDXL's add-embedding (pooled text + size/crop conditioning) is LDM's label_emb.
        ("add_embedding.linear_1.", "label_emb.0.0.", None),
        ("add_embedding.linear_2.", "label_emb.0.2.", None),
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


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu").contiguous()


def _clip_state(encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    """OpenAI CLIP in transformers naming, as SD 1.x and SDXL's first encoder store it."""
    out = {}
    for key, tensor in encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.`` level); the file keeps it.
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        out[prefix + name] = _cpu(tensor)
    return out


def _open_clip_layer_key(base: str, rest: str) -> str:
    for old, new in _OPEN_CLIP_LAYER_PARTS.items():
        if rest.startswith(old + "."):
            return base + new + rest[len(old) :]
    raise NotImplementedError(f"text encoder: no OpenCLIP name for layer tensor {rest!r}")


def _open_clip_state(encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    """An OpenCLIP text tower, as SD 2.x and SDXL's second encoder store it.

    OpenCLIP keeps q, k and v as one ``in_proj`` (diffusers splits it by the
    width), and ``text_projection`` as (width, projection), the transpose of
    transformers' linear weight.
    """
    out: dict[str, torch.Tensor] = {}
    merged: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in encoder.state_dict().items():
        key = key.removeprefix("text_model.")
        layer = _OPEN_CLIP_LAYER.fullmatch(key)
        if key in _OPEN_CLIP_TOP:
            out[prefix + _OPEN_CLIP_TOP[key]] = _cpu(tensor)
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = _cpu(tensor.T)
        elif layer is None:
            raise NotImplementedError(f"text encoder: no OpenCLIP name for tensor {key!r}")
        elif qkv := _QKV.fullmatch(layer.group(2)):
            merged.setdefault(f"{prefix}transformer.resblocks.{layer.group(1)}.attn.in_proj_{qkv.group(2)}", {})[
                qkv.group(1)
            ] = tensor
        else:
            out[_open_clip_layer_key(f"{prefix}transformer.resblocks.{layer.group(1)}.", layer.group(2))] = _cpu(tensor)
    for key, parts in merged.items():
        out[key] = _cpu(torch.cat([parts["q"], parts["k"], parts["v"]]))
    if prefix + "text_projection" not in out:
        # SD 2.x conditions on the tower's hidden states, not the projection, but its files keep
        # one, (width, width); diffusers ignores it yet reads the width from its shape.
        width = out[prefix + "ln_final.weight"].shape[0]
        out[prefix + "text_projection"] = torch.eye(width)
    return out


def _width(encoder: Any) -> int:
    return int(encoder.config.hidden_size)


def pipeline_architecture(pipe: Any) -> str:
    """SD1, SD2 or SDXL, from the pipeline's parts.

    SDXL has a second text encoder. SD 1.x and 2.x differ in their text
    encoder: OpenAI CLIP (SD 1.x) uses quick_gelu, OpenCLIP (SD 2.x) gelu.
    """
    text_encoder_2 = getattr(pipe, "text_encoder_2", None)
    add_embedding = getattr(getattr(pipe, "unet", None), "config", {}).get("addition_embed_type")
    if text_encoder_2 is not None or add_embedding:
        return SDXL
    text_encoder = getattr(pipe, "text_encoder", None)
    if text_encoder is not None and getattr(text_encoder.config, "hidden_act", "") == "gelu":
        return SD2
    return SD1


def _reject_unsupported(pipe: Any, architecture: str) -> None:
    parts = ("unet", "vae", "text_encoder") + (("text_encoder_2",) if architecture == SDXL else ())
    for part in parts:
        if getattr(pipe, part, None) is None:
            raise NotImplementedError(f"{type(pipe).__name__} has no {part}; expected an {architecture} pipeline")
    if architecture != SDXL:
        return
    if pipe.unet.config.get("addition_embed_type") != "text_time":
        raise NotImplementedError("SDXL UNet must have addition_embed_type='text_time' (LDM's label_emb)")
    if not hasattr(pipe.text_encoder_2, "text_projection"):
        raise NotImplementedError(
            f"SDXL text_encoder_2 must be a CLIPTextModelWithProjection (OpenCLIP bigG), got "
            f"{type(pipe.text_encoder_2).__name__}"
        )
    if _width(pipe.text_encoder) == _width(pipe.text_encoder_2):
        # diffusers' loader tells the two encoders apart by width (768 vs 1280 in the real model);
        # with equal widths it would load the CLIP-L weights into text_encoder_2.
        raise NotImplementedError("SDXL's two text encoders must differ in width for a single file to load")


def diffusers_to_ldm_state_dict(pipe: Any, architecture: str | None = None) -> dict[str, torch.Tensor]:
    """One state dict in the original single-file layout for ``pipe``'s models.

    ``architecture`` (SD1, SD2 or SDXL) is read from the pipeline when not given.
    """
    architecture = architecture or pipeline_architecture(pipe)
    if architecture not in (SD1, SD2, SDXL):
        raise ValueError(f"architecture {architecture!r} is not one of {(SD1, SD2, SDXL)}")
    _reject_unsupported(pipe, architecture)
    result = _convert(pipe.unet.state_dict(), _unet_rules(pipe.unet.config), UNET_PREFIX, "unet")

    vae = _convert(pipe.vae.state_dict(), _vae_rules(pipe.vae.config), VAE_PREFIX, "vae")
    for key, tensor in vae.items():
        # LDM's AttnBlock uses 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in key and key.endswith(".weight") and tensor.ndim == 2:
            vae[key] = tensor.reshape(*tensor.shape, 1, 1)
    result.update(vae)

    if architecture == SD1:
        result.update(_clip_state(pipe.text_encoder, CLIP_PREFIX))
    elif architecture == SD2:
        result.update(_open_clip_state(pipe.text_encoder, OPEN_CLIP_PREFIX))
    else:
        result.update(_clip_state(pipe.text_encoder, SDXL_CLIP_PREFIX))
        result.update(_open_clip_state(pipe.text_encoder_2, SDXL_OPEN_CLIP_PREFIX))
    return result
