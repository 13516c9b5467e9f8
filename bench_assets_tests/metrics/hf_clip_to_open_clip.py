"""Test helper: a Hugging Face ``transformers.CLIPModel`` state dict in open_clip's layout.

Covers OpenAI-style CLIP (ViT image tower, causal text transformer, no
biases on the projections), which is what both libraries implement for
``openai/clip-vit-*``. Used to load *the same weights* into torchmetrics'
CLIPScore (HF) and our ClipScore (open_clip).
"""

from __future__ import annotations

from typing import Any


def _blocks(sd: dict[str, Any], hf_prefix: str, oc_prefix: str, layers: int) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for i in range(layers):
        hf = f"{hf_prefix}.encoder.layers.{i}"
        oc = f"{oc_prefix}.resblocks.{i}"
        out[f"{oc}.ln_1.weight"] = sd[f"{hf}.layer_norm1.weight"]
        out[f"{oc}.ln_1.bias"] = sd[f"{hf}.layer_norm1.bias"]
        out[f"{oc}.attn.in_proj_weight"] = torch.cat(
            [sd[f"{hf}.self_attn.{p}_proj.weight"] for p in ("q", "k", "v")], dim=0
        )
        out[f"{oc}.attn.in_proj_bias"] = torch.cat([sd[f"{hf}.self_attn.{p}_proj.bias"] for p in ("q", "k", "v")])
        out[f"{oc}.attn.out_proj.weight"] = sd[f"{hf}.self_attn.out_proj.weight"]
        out[f"{oc}.attn.out_proj.bias"] = sd[f"{hf}.self_attn.out_proj.bias"]
        out[f"{oc}.ln_2.weight"] = sd[f"{hf}.layer_norm2.weight"]
        out[f"{oc}.ln_2.bias"] = sd[f"{hf}.layer_norm2.bias"]
        out[f"{oc}.mlp.c_fc.weight"] = sd[f"{hf}.mlp.fc1.weight"]
        out[f"{oc}.mlp.c_fc.bias"] = sd[f"{hf}.mlp.fc1.bias"]
        out[f"{oc}.mlp.c_proj.weight"] = sd[f"{hf}.mlp.fc2.weight"]
        out[f"{oc}.mlp.c_proj.bias"] = sd[f"{hf}.mlp.fc2.bias"]
    return out


class _Tracking(dict):
    """A dict that records which keys were read, to prove nothing was left behind."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return super().__getitem__(key)


def hf_clip_to_open_clip(hf_state_dict: dict[str, Any], text_layers: int, vision_layers: int) -> dict[str, Any]:
    """Map every tensor of an HF ``CLIPModel`` state dict to its open_clip ``CLIP`` key.

    Raises if an HF tensor (other than position-id buffers) has no destination,
    so a silently dropped weight cannot hide behind a passing comparison.
    """
    sd = _Tracking(hf_state_dict)
    out: dict[str, Any] = {
        # text tower
        "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        "ln_final.bias": sd["text_model.final_layer_norm.bias"],
        # HF: Linear(width -> embed) weight [embed, width]; open_clip: x @ proj with proj [width, embed]
        "text_projection": sd["text_projection.weight"].t(),
        # image tower
        "visual.conv1.weight": sd["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": sd["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": sd["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": sd["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": sd["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": sd["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": sd["vision_model.post_layernorm.bias"],
        "visual.proj": sd["visual_projection.weight"].t(),
        "logit_scale": sd["logit_scale"],
    }
    out.update(_blocks(sd, "text_model", "transformer", text_layers))
    out.update(_blocks(sd, "vision_model", "visual.transformer", vision_layers))
    left = sorted(k for k in set(sd) - sd.used if not k.endswith("position_ids"))
    if left:
        raise ValueError(f"HF CLIP tensors with no open_clip destination: {left}")
    return {key: value.detach().clone().contiguous() for key, value in out.items()}
