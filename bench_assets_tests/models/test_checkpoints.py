"""Telling SD 1.x / 2.x / SDXL single files apart, and v-prediction, from the header alone."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from bench_assets.models.checkpoints import (
    EPSILON,
    SD1,
    SD2,
    SDXL,
    V_PREDICTION,
    CheckpointError,
    detect_checkpoint,
)

# Tensor names as they appear in the real files (v1-5-pruned, v2-1_768-ema-pruned,
# sd_xl_base_1.0, sd_xl_refiner_1.0), a few of each.
UNET = ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.weight"]
VAE = ["first_stage_model.decoder.conv_in.weight", "first_stage_model.encoder.conv_in.weight"]
SD1_KEYS = UNET + VAE + [
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
]
SD2_KEYS = UNET + VAE + [
    "cond_stage_model.model.token_embedding.weight",
    "cond_stage_model.model.positional_embedding",
    "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
    "cond_stage_model.model.text_projection",
]
SDXL_KEYS = UNET + VAE + [
    "model.diffusion_model.label_emb.0.0.weight",
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
    "conditioner.embedders.1.model.text_projection",
]
REFINER_KEYS = UNET + VAE + [
    "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight",
    "conditioner.embedders.0.model.text_projection",
]
KOHYA_LORA_KEYS = [
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
    "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha",
]


def write_header(path, keys, metadata=None):
    """A valid safetensors file: each tensor one float32 (detection reads only the header)."""
    header: dict = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, k in enumerate(keys)}
    if metadata is not None:
        header["__metadata__"] = metadata
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\x00" * (4 * len(keys)))
    return path


@pytest.mark.parametrize(("keys", "architecture"), [(SD1_KEYS, SD1), (SD2_KEYS, SD2), (SDXL_KEYS, SDXL)])
def test_architecture_from_tensor_names(tmp_path, keys, architecture):
    info = detect_checkpoint(write_header(tmp_path / "model.safetensors", keys))
    assert info.architecture == architecture
    assert (info.prediction_type, info.zero_terminal_snr, info.prediction_explicit) == (EPSILON, False, False)
    assert architecture in info.reason


@pytest.mark.parametrize(
    ("name", "keys", "metadata", "ztsnr"),
    [
        ("model", SDXL_KEYS, {"modelspec.prediction_type": "v"}, False),
        ("model", SD2_KEYS, {"modelspec.prediction_type": "v_prediction"}, False),
        ("model", SD1_KEYS, {"ss_v_parameterization": "True", "ss_zero_terminal_snr": "True"}, True),
        ("model", SDXL_KEYS + ["v_pred"], None, False),
        ("model", SDXL_KEYS + ["v_pred", "ztsnr"], None, True),
        ("my-model-v-pred", SDXL_KEYS, None, False),
        ("my_model_V_PRED_1.0", SDXL_KEYS, None, False),
        ("noobai-xl-vpred-1.0", SDXL_KEYS, None, False),
        ("sd21-v-prediction-ztsnr", SD2_KEYS, None, True),
    ],
)
def test_v_prediction_signals(tmp_path, name, keys, metadata, ztsnr):
    info = detect_checkpoint(write_header(tmp_path / f"{name}.safetensors", keys, metadata))
    assert info.prediction_type == V_PREDICTION, info.reason
    assert info.prediction_explicit
    assert info.zero_terminal_snr is ztsnr


@pytest.mark.parametrize("name", ["dev-pred-merge", "preview-2", "v2-1_768-ema-pruned", "vpredator"])
def test_names_that_only_look_alike_are_not_v_prediction(tmp_path, name):
    info = detect_checkpoint(write_header(tmp_path / f"{name}.safetensors", SD2_KEYS))
    assert (info.prediction_type, info.prediction_explicit) == (EPSILON, False), info.reason


def test_metadata_beats_name_and_marker(tmp_path):
    metadata = {"modelspec.prediction_type": "epsilon"}
    path = write_header(tmp_path / "x-v-pred.safetensors", SDXL_KEYS + ["v_pred"], metadata)
    info = detect_checkpoint(path)
    assert (info.prediction_type, info.prediction_explicit) == (EPSILON, True)
    assert "modelspec.prediction_type" in info.reason


def test_unknown_prediction_metadata_is_an_error_naming_the_file(tmp_path):
    path = write_header(tmp_path / "m.safetensors", SDXL_KEYS, {"modelspec.prediction_type": "rectified_flow"})
    with pytest.raises(CheckpointError, match="rectified_flow") as caught:
        detect_checkpoint(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (KOHYA_LORA_KEYS, "LoRA"),
        (["unet.down_blocks.0.attentions.0.proj_in.lora_A.weight"], "LoRA"),
        (REFINER_KEYS, "SDXL refiner"),
        (["encoder.conv_in.weight", "decoder.conv_in.weight"], "VAE"),
        (["model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale"], "Flux"),
        (["down_blocks.0.resnets.0.conv1.weight", "conv_in.weight"], "diffusers naming"),
        (UNET + VAE, "none of the text encoders"),
    ],
)
def test_files_that_are_not_checkpoints_say_what_they_are(tmp_path, keys, says):
    path = write_header(tmp_path / "thing.safetensors", keys)
    with pytest.raises(CheckpointError, match=says) as caught:
        detect_checkpoint(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_lora_error_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match=r"card .*base.*lora.*scale"):
        detect_checkpoint(write_header(tmp_path / "style.safetensors", KOHYA_LORA_KEYS))


@pytest.mark.parametrize("data", [b"\x01\x02", struct.pack("<Q", 10**6) + b"{}", struct.pack("<Q", 4) + b"nope"])
def test_broken_files_raise_checkpoint_error(tmp_path, data):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="not a safetensors file") as caught:
        detect_checkpoint(path)
    assert str(caught.value).startswith(str(path))


def test_detection_imports_no_torch():
    code = "import sys, bench_assets.models.checkpoints; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
