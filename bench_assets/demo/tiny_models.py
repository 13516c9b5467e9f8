"""Tiny random-weight Stable Diffusion 1.x pipelines, built in code.

Real checkpoints are gigabytes and need the network; these are a few MB and
need nothing. They have SD 1.x's architecture and tensor names, so they go
through the very loading and generation code that real models use: as a
diffusers folder, or as one original-layout ``.safetensors`` file with a
config sidecar (how most fine-tunes are shared).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench_assets.demo.ldm_checkpoint import diffusers_to_ldm_state_dict

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77
_MERGES_END = 49152 - 256 - 2 + 1  # OpenAI CLIP keeps this many lines of the BPE file
_SD_BETAS = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest above 255.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def _open_clip_bpe_file() -> Path:
    # Found without importing open_clip (which pulls in torch, timm, ...).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip is not installed; it ships the CLIP BPE vocabulary")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def _write_bpe_files(out_dir: Path) -> None:
    lines = gzip.open(_open_clip_bpe_file()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:_MERGES_END]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [t + "</w>" for t in alphabet] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )


def clip_tokenizer_files(out_dir: Path) -> Path:
    """Write a real CLIP tokenizer (``vocab.json``, ``merges.txt``, configs) to ``out_dir``.

    Rebuilt offline from the BPE list that open_clip ships, in the same order
    as OpenAI CLIP builds it, so token ids match the real SD 1.x tokenizer
    while nothing is downloaded.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_bpe_files(out_dir)
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH, "do_lower_case": True, **specials}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def _add_bpe_files(tokenizer_dir: Path) -> None:
    # transformers 5 saves only tokenizer.json; vocab.json + merges.txt keep the
    # folder loadable by transformers 4.x's CLIPTokenizer too.
    if not (tokenizer_dir / "vocab.json").exists():
        _write_bpe_files(tokenizer_dir)


def build_tiny_sd_pipeline(seed: int = 0, sample_size: int = 32) -> "StableDiffusionPipeline":
    """An SD 1.x-shaped pipeline with random weights drawn from ``seed``.

    Different seeds give different models, so tests can tell two entries apart.
    The VAE downsamples by 2, so 64x64 images use the UNet at its 32x32
    ``sample_size``. The global torch RNG is left untouched.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=sample_size,
            block_out_channels=(32, 64),
            layers_per_block=1,
            # Attention only at the lower resolution: on a CPU, 32x32 self-attention costs more
            # than the rest of the model together.
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=16,
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=sample_size * 2,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                vocab_size=49408,
                max_position_embeddings=MAX_LENGTH,
                bos_token_id=49406,
                eos_token_id=49407,
                pad_token_id=1,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = clip_tokenizer_files(Path(tmp))
        vocab, merges = str(files / "vocab.json"), str(files / "merges.txt")
        tokenizer = CLIPTokenizer(vocab, merges, model_max_length=MAX_LENGTH)
    scheduler = PNDMScheduler(**_SD_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_diffusers_folder(pipe: "StableDiffusionPipeline", path: Path) -> Path:
    """Save as a diffusers folder (safetensors weights), the layout of Hub repos."""
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    _add_bpe_files(path / "tokenizer")
    return path


def _save_configs(pipe: "StableDiffusionPipeline", folder: Path) -> Path:
    # Everything from_single_file needs besides the weights, so it never asks the Hub.
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_config(folder)  # model_index.json
    pipe.unet.save_config(folder / "unet")
    pipe.vae.save_config(folder / "vae")
    pipe.text_encoder.config.save_pretrained(folder / "text_encoder")
    pipe.scheduler.save_config(folder / "scheduler")
    pipe.tokenizer.save_pretrained(folder / "tokenizer")
    _add_bpe_files(folder / "tokenizer")
    return folder


def save_single_file(pipe: "StableDiffusionPipeline", path: Path) -> Path:
    """Save as one original-layout ``.safetensors`` plus its ``<stem>.config/`` sidecar.

    This is how fine-tunes are usually shared (e.g. on Civitai); the sidecar
    lets diffusers build the pipeline without fetching configs from the Hub.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(diffusers_to_ldm_state_dict(pipe), str(path), metadata={"format": "pt"})
    _save_configs(pipe, path.with_name(f"{path.stem}.config"))
    return path
