"""Tiny SD pipelines: real tokenizer, exact LDM layout, seed-dependent weights."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench_assets.demo.ldm_checkpoint import diffusers_to_ldm_state_dict  # noqa: E402
from bench_assets.demo.tiny_models import build_tiny_sd_pipeline  # noqa: E402
from bench_assets.metrics.tiny.tokenizer import clip_tokenizer_files  # noqa: E402

PROMPTS = [
    "a photo of a cat",
    "two red apples on a wooden table, 4k, highly detailed",
    "an astronaut riding a horse in 1999",
    "the word 'hello' written in neon",
]


@pytest.fixture(scope="module")
def tiny_pipe():
    return build_tiny_sd_pipeline(seed=0)


def test_tokenizer_matches_open_clip(tmp_path):
    import open_clip
    from transformers import CLIPTokenizer

    folder = clip_tokenizer_files(tmp_path / "tok")
    reference = open_clip.get_tokenizer("ViT-B-32")  # reads the vocabulary open_clip ships; offline
    direct = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    loaded = CLIPTokenizer.from_pretrained(folder)
    assert loaded.model_max_length == 77
    assert loaded.pad_token == "<|endoftext|>"
    assert len(loaded) == 49408
    for prompt in PROMPTS:
        expected = [i for i in reference([prompt])[0].tolist() if i != 0]  # open_clip pads with 0
        assert expected[0] == 49406 and expected[-1] == 49407
        assert direct(prompt).input_ids == expected, prompt
        assert loaded(prompt).input_ids == expected, prompt
    padded = loaded(PROMPTS[0], padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[-1] == 49407


def test_seeds_give_different_models_and_same_seed_the_same(tiny_pipe):
    state = torch.random.get_rng_state()
    again = build_tiny_sd_pipeline(seed=0)
    other = build_tiny_sd_pipeline(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone
    for part in ("unet", "vae", "text_encoder"):
        ours = getattr(tiny_pipe, part).state_dict()
        same = getattr(again, part).state_dict()
        different = getattr(other, part).state_dict()
        assert all(torch.equal(ours[k], same[k]) for k in ours), part
        assert any(not torch.equal(ours[k], different[k]) for k in ours if ours[k].numel() > 1), part


def _assert_same_state(expected: dict, actual: dict, what: str) -> None:
    assert sorted(actual) == sorted(expected), f"{what}: keys differ"
    for key, tensor in expected.items():
        assert actual[key].shape == tensor.shape, f"{what}: {key}"
        assert torch.equal(actual[key], tensor), f"{what}: {key}"


def _round_trip(pipe) -> None:
    """diffusers' own single-file converters must give back exactly our tensors."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    ldm = diffusers_to_ldm_state_dict(pipe)
    assert "model.diffusion_model.input_blocks.0.0.weight" in ldm
    _assert_same_state(pipe.unet.state_dict(), convert_ldm_unet_checkpoint(ldm, dict(pipe.unet.config)), "unet")
    _assert_same_state(pipe.vae.state_dict(), convert_ldm_vae_checkpoint(ldm, dict(pipe.vae.config)), "vae")
    clip = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ldm).items()}
    expected = {k.removeprefix("text_model."): v for k, v in pipe.text_encoder.state_dict().items()}
    _assert_same_state(expected, clip, "text_encoder")


def test_ldm_layout_round_trips_through_diffusers_converter(tiny_pipe):
    _round_trip(tiny_pipe)
    ldm = diffusers_to_ldm_state_dict(tiny_pipe)
    # VAE attention is stored as 1x1 convolutions, as in the original checkpoints.
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4
    assert "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight" in ldm


# Tensor names that real SD 1.5 checkpoints have (v1-5-pruned.safetensors). diffusers'
# loader also accepts an upsampler in slot 1 after an attention, so the round trip
# alone would not catch a misplaced one; other tools load by these exact names.
SD15_KEYS = [
    "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    "model.diffusion_model.input_blocks.3.0.op.weight",
    "model.diffusion_model.input_blocks.4.0.skip_connection.weight",
    "model.diffusion_model.input_blocks.9.0.op.weight",
    "model.diffusion_model.input_blocks.11.0.emb_layers.1.weight",
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
    "model.diffusion_model.middle_block.2.out_layers.3.weight",
    "model.diffusion_model.output_blocks.2.1.conv.weight",
    "model.diffusion_model.output_blocks.5.2.conv.weight",
    "model.diffusion_model.output_blocks.8.2.conv.weight",
    "model.diffusion_model.output_blocks.11.0.skip_connection.weight",
    "model.diffusion_model.output_blocks.11.1.proj_out.weight",
    "model.diffusion_model.time_embed.2.weight",
    "model.diffusion_model.out.2.weight",
    "first_stage_model.encoder.down.0.downsample.conv.weight",
    "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight",
    "first_stage_model.encoder.mid.attn_1.proj_out.weight",
    "first_stage_model.decoder.up.3.upsample.conv.weight",
    "first_stage_model.decoder.up.1.block.0.nin_shortcut.weight",
    "first_stage_model.decoder.up.0.block.2.conv2.weight",
    "first_stage_model.decoder.norm_out.weight",
    "cond_stage_model.transformer.text_model.final_layer_norm.weight",
]
SD15_ABSENT = [
    "model.diffusion_model.output_blocks.5.1.conv.weight",
    "model.diffusion_model.input_blocks.12.0.op.weight",
    "first_stage_model.encoder.down.3.downsample.conv.weight",
    "first_stage_model.decoder.up.0.upsample.conv.weight",
]


def test_ldm_converter_matches_sd15_layout_at_sd15_depth():
    """SD 1.5's shape (4 levels, 2 resnets each, attention at the three high resolutions), tiny widths."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    tiny = build_tiny_sd_pipeline(seed=3)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16, 32, 32),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32,
        attention_head_dim=2,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        norm_num_groups=8,
    )
    pipe = SimpleNamespace(unet=unet, vae=vae, text_encoder=tiny.text_encoder)
    ldm = diffusers_to_ldm_state_dict(pipe)
    assert [k for k in SD15_KEYS if k not in ldm] == []
    assert [k for k in SD15_ABSENT if k in ldm] == []
    _round_trip(pipe)


def test_sdxl_is_rejected(tiny_pipe):
    sdxl_like = SimpleNamespace(
        unet=tiny_pipe.unet, vae=tiny_pipe.vae, text_encoder=tiny_pipe.text_encoder, text_encoder_2=object()
    )
    with pytest.raises(NotImplementedError, match="SDXL"):
        diffusers_to_ldm_state_dict(sdxl_like)
