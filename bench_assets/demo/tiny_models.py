"""Tiny random-weight Stable Diffusion 1.x, 2.x and SDXL pipelines, built in code.

Real checkpoints are gigabytes and need the network; these are a few MB and
need nothing. They have the real architectures and tensor names (at tiny
widths), so they go through the very loading and generation code that real
models use: as a diffusers folder, or as one original-layout ``.safetensors``
file with a config sidecar (how most fine-tunes are shared).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_assets.demo.ldm_checkpoint import diffusers_to_ldm_state_dict
from bench_assets.metrics.tiny.tokenizer import EOS, MAX_LENGTH, clip_tokenizer_files, write_bpe_files

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

_SD_BETAS = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}
OPEN_CLIP_PAD = "!"  # OpenCLIP pads with token 0, which is "!" (SD 2.x's and SDXL's second tokenizer)


def _add_bpe_files(tokenizer_dir: Path) -> None:
    # transformers 5 saves only tokenizer.json; vocab.json + merges.txt keep the
    # folder loadable by transformers 4.x's CLIPTokenizer too.
    if not (tokenizer_dir / "vocab.json").exists():
        write_bpe_files(tokenizer_dir)


def _tiny_vae(sample_size: int, **options: Any) -> Any:
    # Two levels: the VAE downsamples by 2, so 64x64 images use a UNet at 32x32.
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=sample_size * 2,
        **options,
    )


def _tiny_clip_config(hidden_size: int, hidden_act: str = "quick_gelu", **options: Any) -> Any:
    """A 2-layer CLIP text tower; OpenAI CLIP uses quick_gelu, OpenCLIP (SD 2.x, SDXL's bigG) gelu."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=hidden_size,
        intermediate_size=37 if hidden_size == 32 else 2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=49408,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
        hidden_act=hidden_act,
        **options,
    )


def _tiny_tokenizer(pad_token: str = EOS) -> Any:
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        files = clip_tokenizer_files(Path(tmp))
        vocab, merges = str(files / "vocab.json"), str(files / "merges.txt")
        return CLIPTokenizer(vocab, merges, model_max_length=MAX_LENGTH, pad_token=pad_token)


def _tiny_unet(sample_size: int, **options: Any) -> Any:
    # Attention only at the lower resolution: on a CPU, 32x32 self-attention costs more
    # than the rest of the model together.
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
        **options,
    )


def _sd_pipeline(**components: Any) -> "StableDiffusionPipeline":
    """An SD 1.x/2.x pipeline of ``components`` without a safety checker, its progress bar off."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_sd_pipeline(seed: int = 0, sample_size: int = 32) -> "StableDiffusionPipeline":
    """An SD 1.x-shaped pipeline with random weights drawn from ``seed``.

    Different seeds give different models, so tests can tell two entries apart.
    The VAE downsamples by 2, so 64x64 images use the UNet at its 32x32
    ``sample_size``. The global torch RNG is left untouched.
    """
    import torch
    from diffusers import PNDMScheduler
    from transformers import CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = _tiny_unet(sample_size, cross_attention_dim=32, attention_head_dim=4)
        vae = _tiny_vae(sample_size)
        text_encoder = CLIPTextModel(_tiny_clip_config(32))
    scheduler = PNDMScheduler(**_SD_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    return _sd_pipeline(vae=vae, text_encoder=text_encoder, tokenizer=_tiny_tokenizer(), unet=unet,
                        scheduler=scheduler)


def build_tiny_sd2_pipeline(seed: int = 0, sample_size: int = 32) -> "StableDiffusionPipeline":
    """An SD 2.x-shaped pipeline (epsilon, like SD 2.x base) with random weights drawn from ``seed``.

    What makes it SD 2.x rather than 1.x: an OpenCLIP text encoder (gelu,
    saved as ``cond_stage_model.model.*`` with merged q/k/v), linear
    projections around the UNet's transformers, per-level head counts, a
    tokenizer that pads with "!", and a DDIM scheduler as SD 2.1 ships.
    """
    import torch
    from diffusers import DDIMScheduler
    from transformers import CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = _tiny_unet(sample_size, cross_attention_dim=32, attention_head_dim=(2, 4), use_linear_projection=True)
        vae = _tiny_vae(sample_size)
        text_encoder = CLIPTextModel(_tiny_clip_config(32, hidden_act="gelu"))
    scheduler = DDIMScheduler(**_SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return _sd_pipeline(vae=vae, text_encoder=text_encoder, tokenizer=_tiny_tokenizer(OPEN_CLIP_PAD), unet=unet,
                        scheduler=scheduler)


SDXL_TIME_EMBED_DIM = 8  # SDXL: 256; six size/crop numbers, each embedded to this width


def build_tiny_sdxl_pipeline(seed: int = 0, sample_size: int = 32) -> "StableDiffusionXLPipeline":
    """An SDXL-base-shaped pipeline with random weights drawn from ``seed``.

    Two text encoders, as in SDXL: CLIP-L-like (width 32, quick_gelu) and
    OpenCLIP-bigG-like with a projection (width 48, gelu); the UNet attends to
    both (32 + 48) and gets the pooled projection plus size/crop numbers
    through its add-embedding. The two widths must differ, as 768 and 1280
    do: diffusers' single-file loader tells the encoders apart by width.
    Two transformer layers in the lower level, as SDXL stacks several.
    """
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    projection = 32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = _tiny_unet(
            sample_size,
            transformer_layers_per_block=(1, 2),
            cross_attention_dim=32 + 48,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=SDXL_TIME_EMBED_DIM,
            projection_class_embeddings_input_dim=projection + 6 * SDXL_TIME_EMBED_DIM,
        )
        vae = _tiny_vae(sample_size, scaling_factor=0.13025)
        text_encoder = CLIPTextModel(_tiny_clip_config(32))
        text_encoder_2 = CLIPTextModelWithProjection(_tiny_clip_config(48, "gelu", projection_dim=projection))
    scheduler = EulerDiscreteScheduler(**_SD_BETAS, steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_tiny_tokenizer(),
        tokenizer_2=_tiny_tokenizer(OPEN_CLIP_PAD),
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tokenizer_folders(pipe: Any) -> list[str]:
    return [name for name in ("tokenizer", "tokenizer_2") if getattr(pipe, name, None) is not None]


def save_diffusers_folder(pipe: "StableDiffusionPipeline", path: Path) -> Path:
    """Save as a diffusers folder (safetensors weights), the layout of Hub repos."""
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    for name in _tokenizer_folders(pipe):
        _add_bpe_files(path / name)
    return path


def _save_configs(pipe: Any, folder: Path) -> Path:
    # Everything from_single_file needs besides the weights, so it never asks the Hub.
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_config(folder)  # model_index.json
    for name, component in pipe.components.items():
        if component is None:
            continue
        if hasattr(component, "save_config"):  # diffusers models and schedulers
            component.save_config(folder / name)
        elif hasattr(component, "config"):  # transformers models: config.json only
            component.config.save_pretrained(folder / name)
        else:  # tokenizers
            component.save_pretrained(folder / name)
    for name in _tokenizer_folders(pipe):
        _add_bpe_files(folder / name)
    return folder


V_PRED_METADATA = {"modelspec.prediction_type": "v"}


def save_single_file(
    pipe: Any, path: Path, *, v_prediction: str | None = None, zero_terminal_snr: bool = False
) -> Path:
    """Save as one original-layout ``.safetensors`` plus its ``<stem>.config/`` sidecar.

    This is how fine-tunes are usually shared (e.g. on Civitai); the sidecar
    lets diffusers build the pipeline without fetching configs from the Hub.
    The sidecar keeps the pipeline's own scheduler config, so a v-prediction
    variant of an epsilon pipeline proves that the file's own signal wins:

    - ``v_prediction="metadata"``: ``modelspec.prediction_type: v`` in the header;
    - ``v_prediction="keys"``: an empty ``v_pred`` tensor, as community SDXL
      v-prediction checkpoints carry (plus ``ztsnr`` with ``zero_terminal_snr``);
    - or nothing here and a name with ``v-pred`` in it.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = diffusers_to_ldm_state_dict(pipe)
    metadata = {"format": "pt"}
    if v_prediction == "metadata":
        metadata.update(V_PRED_METADATA)
        if zero_terminal_snr:
            metadata["ss_zero_terminal_snr"] = "True"  # kohya's training metadata
    elif v_prediction == "keys":
        state["v_pred"] = torch.empty(0)
        if zero_terminal_snr:
            state["ztsnr"] = torch.empty(0)
    elif v_prediction is not None or zero_terminal_snr:
        raise ValueError(
            f"v_prediction must be None, 'metadata' or 'keys' (zero_terminal_snr needs one), got {v_prediction!r}"
        )
    save_file(state, str(path), metadata=metadata)
    _save_configs(pipe, path.with_name(f"{path.stem}.config"))
    return path
