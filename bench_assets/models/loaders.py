"""How each kind of model loads: one function per row of ``MODEL_KINDS``, returning a diffusers pipeline.

Each loader takes the entry and a torch dtype and returns the pipeline on the
CPU; ``generation/pipelines.py`` calls the entry's row, moves the pipeline to
its device and turns any error into a ``ModelLoadError`` naming the model's
path. What is common to every kind (dtype, sampler, device) stays there.

Only safetensors weights are read: a pickle checkpoint can run code when
loaded, and models come from anywhere. The one exception is a checkpoint the
user allowed by name in a card (``checkpoint: x.ckpt`` + ``allow_pickle: true``).

diffusers, huggingface_hub and safetensors.torch are imported inside the
functions: they are heavy (torch), and the registry that holds the table runs
on every sensor tick without them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from bench_assets.models.cards import (
    HfRepoSource,
    LoraSource,
    PickleSource,
    cached_commit,
    hf_hub_cache,
    hf_repo_folder,
)
from bench_assets.models.checkpoints import PREDICTION_SPELLINGS, SD1, SD2, SDXL, CheckpointInfo, detect_checkpoint
from bench_assets.models.entry import ModelEntry

Loader = Callable[[ModelEntry, Any], Any]  # (entry, torch dtype) -> a diffusers pipeline on the CPU

_SDXL_KEY_PREFIX = "conditioner.embedders.1."  # SDXL's second (OpenCLIP bigG) text encoder


def _is_sdxl(keys: list[str]) -> bool:
    return any(key.startswith(_SDXL_KEY_PREFIX) for key in keys)


def load_diffusers_folder(entry: ModelEntry, torch_dtype: Any) -> Any:
    from diffusers import DiffusionPipeline  # heavy (torch): imported only to load

    kwargs: dict[str, Any] = {}
    index = json.loads((entry.path / "model_index.json").read_text())
    if "safety_checker" in index:  # SD 1.x/2.x; SDXL would warn about an unexpected argument
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return DiffusionPipeline.from_pretrained(
        entry.path, torch_dtype=torch_dtype, use_safetensors=True, local_files_only=True, **kwargs
    )


# Configs for a single file without a <name>.config/ sidecar, from the user's HF cache
# (diffusers' own defaults for these architectures; SD 2.x's is the 768 v-prediction model).
_REFERENCE_REPOS = {
    SD1: "stable-diffusion-v1-5/stable-diffusion-v1-5",
    SD2: "stabilityai/stable-diffusion-2-1",
    SDXL: "stabilityai/stable-diffusion-xl-base-1.0",
}
_PREDICTION_SETTING = "prediction_type"


def _settings_prediction(entry: ModelEntry) -> str | None:
    """``prediction_type`` from the model's settings (its ``<name>.settings.yaml``), if it says one."""
    value = entry.settings_overrides().get(_PREDICTION_SETTING)
    if value is None:
        return None
    if str(value).strip().lower() not in PREDICTION_SPELLINGS:
        raise ValueError(
            f"{entry.settings_sidecar}: {_PREDICTION_SETTING} {value!r} is not one of {sorted(PREDICTION_SPELLINGS)}"
        )
    return PREDICTION_SPELLINGS[str(value).strip().lower()]


def _prediction_overrides(entry: ModelEntry, info: CheckpointInfo, scheduler_config: Any) -> dict[str, Any]:
    """Scheduler config changes so that sampling matches how the checkpoint was trained.

    Who decides the prediction type, strongest first: the model's settings
    (written by the user for this model), the file itself (metadata, marker
    tensor, name), then the config (sidecar or reference repo), which is often
    just the base model's and says epsilon for a v-prediction fine-tune.
    """
    prediction = _settings_prediction(entry)
    if prediction is None and info.prediction_explicit:
        prediction = info.prediction_type
    overrides: dict[str, Any] = {}
    if prediction is not None and scheduler_config.get("prediction_type") != prediction:
        overrides["prediction_type"] = prediction
    if info.zero_terminal_snr:
        # Zero terminal SNR models are trained to start from pure noise: the last timestep must be sampled.
        overrides.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    return overrides


def _apply_prediction(pipe: Any, entry: ModelEntry, info: CheckpointInfo) -> None:
    """Rebuild the scheduler with the checkpoint's prediction type (and zero terminal SNR).

    The values land in the scheduler's config, so ``apply_sampler`` (which
    builds the new sampler ``from_config``) keeps them.
    """
    import inspect

    from diffusers import EulerDiscreteScheduler  # heavy (torch): imported only to load

    overrides = _prediction_overrides(entry, info, pipe.scheduler.config)
    if not overrides:
        return
    cls = type(pipe.scheduler)
    if info.zero_terminal_snr and "rescale_betas_zero_snr" not in inspect.signature(cls.__init__).parameters:
        cls = EulerDiscreteScheduler  # e.g. PNDM cannot rescale its betas
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)


def _single_file_config(entry: ModelEntry, architecture: str) -> dict[str, Any]:
    """``from_single_file`` config arguments: the sidecar folder, else the reference repo in the HF cache."""
    if entry.config_sidecar.is_dir():
        return {"config": str(entry.config_sidecar)}
    return {"config": _REFERENCE_REPOS[architecture], "cache_dir": str(hf_hub_cache())}


def load_single_file(entry: ModelEntry, torch_dtype: Any) -> Any:
    """An original-layout SD 1.x / 2.x / SDXL ``.safetensors``, told apart by its tensor names.

    Configs come from the ``<name>.config/`` sidecar when there is one (no
    hub), else from the architecture's reference repo in the user's HF cache.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline  # heavy (torch): imported only to load

    info = detect_checkpoint(entry.path)
    kwargs = {"torch_dtype": torch_dtype, **_single_file_config(entry, info.architecture)}
    try:
        if info.architecture == SDXL:
            # An invisible watermark (if the package is installed) would alter the pixels we score.
            pipe = StableDiffusionXLPipeline.from_single_file(str(entry.path), add_watermarker=False, **kwargs)
        else:
            pipe = StableDiffusionPipeline.from_single_file(
                str(entry.path), safety_checker=None, requires_safety_checker=False, **kwargs
            )
    except OSError as exc:  # the hub's offline/not-cached/HTTP errors are all OSErrors
        if "cache_dir" not in kwargs:
            raise
        raise OSError(
            f"no {entry.config_sidecar.name}/ sidecar, so the configs of this {info.architecture} checkpoint "
            f"come from {kwargs['config']} in the HF cache {kwargs['cache_dir']}, which failed: {exc} "
            f"(run once online, or put that repo's configs in {entry.config_sidecar.name}/)"
        ) from exc
    _apply_prediction(pipe, entry, info)
    return pipe


def _card_source(entry: ModelEntry, kind: type) -> Any:
    source = entry.card.source if entry.card is not None else None
    if not isinstance(source, kind):
        raise ValueError(f"{entry.kind} entry has no {kind.__name__} card")
    return source


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hf_safety_checker_kwargs(repo: str, revision: str | None, cache: Path) -> dict[str, Any]:
    """Disable SD 1.x/2.x's safety checker (it blacks out images) without a warning on SDXL."""
    commit = cached_commit(repo, revision, cache)
    index_file = hf_repo_folder(repo, cache) / "snapshots" / str(commit) / "model_index.json"
    if commit and index_file.is_file():
        if "safety_checker" not in json.loads(index_file.read_text()):
            return {}
    # Not cached yet: better a warning on SDXL than a downloaded checker blacking out SD 1.5 images.
    return {"safety_checker": None, "requires_safety_checker": False}


def _from_hub(repo: str, revision: str | None, variant: str | None, torch_dtype: Any) -> Any:
    """``from_pretrained`` from the user's HF cache (HF_HOME/HF_HUB_CACHE) with their token.

    The cache folder is resolved at call time and passed explicitly, so a
    changed HF_HUB_CACHE is honoured even after huggingface_hub was imported.
    Safetensors only, as everywhere. The token never reaches a message.
    """
    from diffusers import DiffusionPipeline  # heavy (torch): imported only to load
    from huggingface_hub import get_token

    cache = hf_hub_cache()
    token = get_token()  # HF_TOKEN, else the user's cached `hf auth login`
    try:
        return DiffusionPipeline.from_pretrained(
            repo, revision=revision, variant=variant, torch_dtype=torch_dtype, token=token,
            cache_dir=str(cache), local_files_only=_hf_offline(), use_safetensors=True,
            **_hf_safety_checker_kwargs(repo, revision, cache),
        )
    except Exception as exc:
        if token and token in str(exc):
            raise RuntimeError(str(exc).replace(token, "<HF token>")) from None
        raise


def load_hf_repo(entry: ModelEntry, torch_dtype: Any) -> Any:
    src = _card_source(entry, HfRepoSource)
    return _from_hub(src.repo, src.revision, src.variant, torch_dtype)


def _pickle_is_sdxl(checkpoint: Path, config: Path | None) -> bool:
    index = config / "model_index.json" if config else None
    if index is not None and index.is_file():
        return "XL" in json.loads(index.read_text()).get("_class_name", "")
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint  # heavy (torch): imported only to load

    return _is_sdxl(list(load_single_file_checkpoint(str(checkpoint))))


def load_pickle_checkpoint(entry: ModelEntry, torch_dtype: Any) -> Any:
    """A ``.ckpt``/``.pt`` the user allowed in its card (``allow_pickle: true``).

    diffusers reads it with ``torch.load(weights_only=True)``, which refuses
    arbitrary objects; a checkpoint that needs more than tensors fails here.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline  # heavy (torch): imported only to load

    checkpoint = _card_source(entry, PickleSource).checkpoint
    sidecars = (entry.config_sidecar, checkpoint.with_name(f"{checkpoint.stem}.config"))
    config = next((c for c in sidecars if c.is_dir()), None)
    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
    if config is not None:
        kwargs["config"] = str(config)
    if _pickle_is_sdxl(checkpoint, config):
        return StableDiffusionXLPipeline.from_single_file(str(checkpoint), **kwargs)
    return StableDiffusionPipeline.from_single_file(
        str(checkpoint), safety_checker=None, requires_safety_checker=False, **kwargs
    )


def load_lora(entry: ModelEntry, torch_dtype: Any, load_base: Loader) -> Any:
    """The base pipeline with the LoRA fused in at the card's scale.

    Fusing (then dropping the adapter modules) costs nothing per step, and a
    scale of 0 gives back exactly the base model.
    """
    from safetensors.torch import load_file  # heavy (torch): imported only to load

    src = _card_source(entry, LoraSource)
    if entry.base is None:
        raise ValueError("LoRA entry has no base model")
    pipe = load_base(entry.base, torch_dtype)
    state = load_file(str(src.lora))  # a dict: never a path that diffusers could resolve on the Hub
    try:
        pipe.load_lora_weights(state, adapter_name="card")
        pipe.fuse_lora(lora_scale=src.scale, adapter_names=["card"])
        pipe.unload_lora_weights()
    except Exception as exc:
        raise RuntimeError(f"LoRA {src.lora} does not fit base {entry.base.path}: {type(exc).__name__}: {exc}") from exc
    return pipe
