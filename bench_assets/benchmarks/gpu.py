"""``make bench-gpu``: generation and scoring speed at real size, on a GPU, without weights.

SDXL's UNet, VAE and both text encoders are built from their published
configs (stabilityai/stable-diffusion-xl-base-1.0) with random weights, so
the arithmetic is exactly SDXL's while nothing is downloaded; the same for
CLIP ViT-L/14 (open_clip's config). Random weights make the pictures noise,
but the time per image depends only on the architecture, resolution, steps,
batch and precision.

Writes a JSON of the figures to ``--out`` and prints a markdown table for
docs/performance.md. ``--scale tiny`` shrinks every width so the script's
code path can be checked on a CPU in seconds (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

# stabilityai/stable-diffusion-xl-base-1.0: unet/config.json, vae/config.json,
# text_encoder/config.json, text_encoder_2/config.json (architecture fields only).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)
SDXL_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=1024,
    block_out_channels=(128, 256, 512, 512), scaling_factor=0.13025, force_upcast=True,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
SDXL_TEXT_1 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   hidden_act="quick_gelu", projection_dim=768)
SDXL_TEXT_2 = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                   hidden_act="gelu", projection_dim=1280)
SDXL_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                      timestep_spacing="leading", num_train_timesteps=1000)


def _tiny(config: dict[str, Any]) -> dict[str, Any]:
    """Every width divided down so the whole model is a few MB (code-path check only)."""
    out = dict(config)
    if "block_out_channels" in out:
        out["block_out_channels"] = tuple(32 * (i + 1) for i in range(len(out["block_out_channels"])))
        out["norm_num_groups"] = 8
    if "transformer_layers_per_block" in out:
        out.update(transformer_layers_per_block=1, attention_head_dim=8, cross_attention_dim=64,
                   addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32)
    if "hidden_size" in out:
        out.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   projection_dim=32)
    return out


def build_sdxl(device: str, dtype: Any, scale: str) -> Any:
    """An SDXL pipeline with random weights, built directly on ``device``."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from bench_assets.metrics.tiny.tokenizer import clip_tokenizer_files

    pick = _tiny if scale == "tiny" else dict
    text_1, text_2 = pick(SDXL_TEXT_1), pick(SDXL_TEXT_2)
    if scale == "tiny":  # SDXL feeds both encoders' hidden states, concatenated, as the cross-attention input
        text_2["hidden_size"] = 32
    tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer_files(Path(tempfile.mkdtemp()) / "tokenizer"))
    with torch.device(device):
        unet = UNet2DConditionModel(**pick(SDXL_UNET))
        vae = AutoencoderKL(**pick(SDXL_VAE))
        encoder_1 = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **text_1))
        encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **text_2))
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=encoder_1, text_encoder_2=encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer,
        unet=unet, scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
    ).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_generation(pipe: Any, device: str, batch: int, size: int, steps: int, repeats: int) -> dict[str, float]:
    import torch

    def call(n_steps: int) -> None:
        pipe(prompt=["a photo of a red bicycle leaning on a brick wall"] * batch, num_inference_steps=n_steps,
             guidance_scale=5.0, width=size, height=size, output_type="np",
             generator=[torch.Generator("cpu").manual_seed(k) for k in range(batch)])

    call(2)  # warm-up: kernels, allocator, (compile)
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(repeats):
        call(steps)
    _sync(device)
    seconds = (time.perf_counter() - started) / repeats
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return {"batch": batch, "seconds_per_call": seconds, "images_per_s": batch / seconds,
            "seconds_per_image": seconds / batch, "peak_gib": peak}


def time_clip(device: str, dtype: Any, scale: str, batch: int, n_images: int) -> dict[str, float]:
    """CLIP ViT-L/14 scoring: preprocessing from PIL, image + text towers, cosine."""
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    name = "ViT-L-14"
    if scale == "tiny":
        preprocess = open_clip.image_transform(32, is_train=False)
        model = open_clip.CLIP(embed_dim=32, vision_cfg={"image_size": 32, "layers": 2, "width": 32, "patch_size": 8,
                                                         "head_width": 16},
                               text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4,
                                         "layers": 2}).to(device)
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None, device=device)
    model = model.to(dtype).eval()
    tokenizer = open_clip.get_tokenizer(name)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)) for _ in range(batch)]

    def score() -> None:
        with torch.inference_mode():
            pixels = torch.stack([preprocess(im) for im in images]).to(device, dtype)
            text = tokenizer(["a photo of a red bicycle"] * batch).to(device)
            a = model.encode_image(pixels)
            b = model.encode_text(text)
            (torch.nn.functional.normalize(a, dim=-1) * torch.nn.functional.normalize(b, dim=-1)).sum(-1).cpu()

    score()
    _sync(device)
    calls = max(1, n_images // batch)
    started = time.perf_counter()
    for _ in range(calls):
        score()
    _sync(device)
    seconds = time.perf_counter() - started
    return {"batch": batch, "images_per_s": calls * batch / seconds}


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["sdxl", "tiny"], default="sdxl")
    parser.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_gpu.json"))
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    gpu = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    pipe = build_sdxl(device, dtype, args.scale)
    generation = []
    for batch in (int(b) for b in args.batches.split(",")):
        try:
            generation.append(time_generation(pipe, device, batch, args.size, args.steps, args.repeats))
        except torch.cuda.OutOfMemoryError:
            generation.append({"batch": batch, "error": "out of memory"})
            torch.cuda.empty_cache()
        print(json.dumps(generation[-1]), flush=True)
    del pipe
    scoring = [time_clip(device, dtype, args.scale, b, 512 if args.scale == "sdxl" else 8) for b in (1, 64)]
    result = {"gpu": gpu, "torch": torch.__version__, "dtype": args.dtype, "scale": args.scale, "size": args.size,
              "steps": args.steps, "generation": generation, "clip_vit_l14_scoring": scoring,
              "measured_at": time.strftime("%Y-%m-%d")}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\n| {gpu} | batch | images/s | s/image | peak GiB |\n|---|---|---|---|---|")
    for row in generation:
        if "error" not in row:
            print(f"| SDXL {args.size}², {args.steps} steps, {args.dtype} | {row['batch']} | "
                  f"{row['images_per_s']:.3f} | {row['seconds_per_image']:.2f} | {row['peak_gib']:.1f} |")
    for row in scoring:
        print(f"| CLIP ViT-L/14 scoring, {args.dtype} | {row['batch']} | {row['images_per_s']:.1f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
