"""Generate the missing images of one (model, category) partition.

One pipeline load per call, prompts batched, one CPU ``torch.Generator`` per
image seeded with ``base_seed + k``: the initial noise of an image depends only
on its seed, never on which batch it landed in or on the device, so a gap
filled later is the same image it would have been.

A failed generation (exception, non-finite pixels, an all-black frame) is
reported as a failure and never written, so it is never scored.

Images go to the image store the request names (a local folder or a bucket,
see ``storage/store.py``), one atomic write each; the report carries the
manifest row of every image written, so nobody reads an image back to
record it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from bench_assets.models.registry import ModelEntry
from bench_assets.core.progress import Progress
from bench_assets.prompts.prompt import Prompt
from bench_assets.core.settings import GenerationSettings, set_fingerprint
from bench_assets.core.objects import Store
from bench_assets.generation import pipelines
from bench_assets.generation.image_set import ImageJob, missing_jobs, plan_images, write_image
from bench_assets.generation.runtime import RuntimeOptions, apply_runtime

Log = Callable[[str], None]


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a worker (local or remote) needs to fill one partition."""

    entry: ModelEntry
    model_fingerprint: str
    category: str
    prompts: tuple[Prompt, ...]
    settings: GenerationSettings
    images: Store  # where the PNGs go: the image store (keys <model>/<category>/<file>.png)
    device: str = "auto"
    runtime: RuntimeOptions = RuntimeOptions()
    # (prompt_id, image_index) pairs to make; None = every missing image. A
    # remote backend splits a partition into such chunks, one per container.
    only: tuple[tuple[str, int], ...] | None = None
    gpus: int = 1
    # The partition's manifest rows as last recorded: an image whose size and mtime still match its
    # row counts as present without being read (on an object store, without being downloaded).
    known: tuple[dict[str, Any], ...] = ()


class GenerationOutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message names the model and what to change."""


@dataclass(frozen=True)
class GenerationFailure:
    prompt_id: str
    image_index: int
    seed: int
    error: str


@dataclass
class GenerationReport:
    set_fingerprint: str
    device: str
    dtype: str
    expected: int
    present_before: int
    generated: int = 0
    failures: list[GenerationFailure] = field(default_factory=list)
    seconds: float = 0.0
    load_seconds: float = 0.0
    gpu_seconds: float = 0.0  # device time held (load + batches) x GPUs used: what the partition cost
    cancelled: bool = False
    pipeline_loaded: bool = False  # False when the worker's already-loaded pipeline was reused
    written: list[dict[str, Any]] = field(default_factory=list)  # manifest rows of the images written


def _batches(jobs: Sequence[ImageJob], size: int) -> Iterator[Sequence[ImageJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def pixel_problem(image: Any) -> str | None:
    """Why a decoded float image in [0, 1] must not be saved, or None."""
    import numpy as np

    if not np.isfinite(image).all():
        return "non-finite pixel values (NaN/inf), typically an fp16 overflow"
    if float(image.max()) <= 0.0:
        return "all-black image (a safety checker or a failed decode)"
    return None


def _library_versions() -> dict[str, str]:
    import diffusers
    import torch

    return {"torch_version": torch.__version__, "diffusers_version": diffusers.__version__}


def _run_batch(pipe: Any, batch: Sequence[ImageJob], settings: GenerationSettings) -> Any:
    import torch

    generators = [torch.Generator("cpu").manual_seed(job.seed) for job in batch]
    with torch.inference_mode():
        return pipe(
            prompt=[job.prompt.prompt for job in batch],
            negative_prompt=[job.prompt.negative_prompt or "" for job in batch],
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            width=settings.width,
            height=settings.height,
            generator=generators,
            output_type="np",
        ).images


def image_provenance(request: GenerationRequest, job: ImageJob, set_fp: str, **how: Any) -> dict[str, Any]:
    """What a PNG records about itself: which set, prompt and seed it is, plus ``how`` it was made."""
    return {
        "model": request.entry.key,
        "model_fingerprint": request.model_fingerprint,
        "category": request.category,
        "prompt_id": job.prompt.id,
        "prompt_hash": job.prompt.text_hash,
        "image_index": job.index,
        "seed": job.seed,
        "set_fingerprint": set_fp,
        "settings": request.settings.as_dict(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **how,
    }


def todo_jobs(request: GenerationRequest, jobs: list[ImageJob], set_fp: str) -> list[ImageJob]:
    """The jobs this call must make: within ``request.only``, and missing from the store.

    Narrowed first, so a Modal container checks only its own chunk, never
    the images other containers are writing at the same time.
    """
    if request.only is not None:
        wanted = set(request.only)
        jobs = [job for job in jobs if (job.prompt.id, job.index) in wanted]
    return missing_jobs(request.images, jobs, set_fp, request.known)


def _load(request: GenerationRequest, device: str, dtype: str, pipe_cache: dict | None) -> tuple[Any, bool]:
    """(pipeline, whether it was really loaded): a worker's cached pipeline is reused."""
    key = (request.model_fingerprint, device, dtype, request.settings.sampler, request.runtime)
    if pipe_cache is not None and key in pipe_cache:
        return pipe_cache[key], False
    # With offloading the weights stay in CPU memory and move to the GPU per component.
    pipe = pipelines.load_pipeline(request.entry, "cpu" if request.runtime.offloaded else device, dtype)
    pipelines.apply_sampler(pipe, request.settings.sampler)
    pipe = apply_runtime(pipe, request.runtime, device)
    if pipe_cache is not None:
        pipe_cache.clear()  # one pipeline per worker: a second would double the memory
        pipe_cache[key] = pipe
    return pipe, True


def _out_of_memory(request: GenerationRequest, device: str) -> GenerationOutOfMemory:
    s = request.settings
    return GenerationOutOfMemory(
        f"{request.entry.path}: out of GPU memory on {device} generating batches of {s.batch_size} "
        f"at {s.width}x{s.height}; lower batch_size, turn on vae_tiling or cpu_offload in the "
        "compute config, or give the model more GPUs (gpus: 2 in its settings). "
        "Images written before this batch are kept."
    )


@dataclass(frozen=True)
class _SetRun:
    """What every batch of one call shares: where it runs, which set it fills, what a PNG records."""

    request: GenerationRequest
    device: str
    dtype: str
    set_fingerprint: str
    load_share: float  # the pipeline's load time, spread over the images this call makes
    versions: dict[str, str]


def _write_batch(run: _SetRun, batch: Sequence[ImageJob], images: Any, seconds: float,
                 report: GenerationReport) -> None:
    """Write each finished image of a batch; one with bad pixels is a failure, never written."""
    import numpy as np  # heavy, like torch: only where images are really made

    request, settings = run.request, run.request.settings
    for job, image in zip(batch, images):
        problem = pixel_problem(image)
        if problem:
            report.failures.append(GenerationFailure(job.prompt.id, job.index, job.seed, problem))
            continue
        meta = image_provenance(
            request, job, run.set_fingerprint,
            seconds=seconds, gpu_seconds=(seconds + run.load_share) * request.gpus, device=run.device,
            dtype=run.dtype, width=settings.width, height=settings.height, **run.versions,
        )
        pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype("uint8")
        report.written.append(write_image(request.images, job, pixels, meta))
        report.generated += 1


def _generate_batches(pipe: Any, todo: list[ImageJob], run: _SetRun, report: GenerationReport,
                      log: Log, should_stop: Callable[[], bool]) -> None:
    """Run the batches in order, stopping between two when asked; a failed batch loses only itself."""
    import torch  # heavy: only where images are really made

    request = run.request
    progress = Progress(f"{request.category}: images written", len(todo))
    for batch in _batches(todo, request.settings.batch_size):
        if should_stop():
            report.cancelled = True
            log("stop requested: finishing between batches; images written so far stay valid")
            break
        started = time.perf_counter()
        try:
            images = _run_batch(pipe, batch, request.settings)
        except torch.cuda.OutOfMemoryError:
            raise _out_of_memory(request, run.device) from None
        except Exception as exc:  # one bad batch must not lose the others
            message = f"{type(exc).__name__}: {exc}"
            report.failures += [GenerationFailure(j.prompt.id, j.index, j.seed, message) for j in batch]
            log(f"batch failed: {message}")
            continue
        seconds = (time.perf_counter() - started) / len(batch)
        report.seconds += seconds * len(batch)
        _write_batch(run, batch, images, seconds, report)
        log(progress.advance(len(batch), seconds * len(batch)))


def generate_image_set(
    request: GenerationRequest,
    log: Log = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
    pipe_cache: dict | None = None,
) -> GenerationReport:
    """Fill the gaps of the partition's image set; existing images are never rewritten.

    ``pipe_cache`` (a dict the caller keeps) lets a long-lived worker, such as
    a Modal container, reuse the loaded pipeline across calls.
    """
    settings = request.settings
    device = pipelines.resolve_device(request.device)
    dtype = pipelines.resolve_dtype(settings.precision, device)
    fp = set_fingerprint(request.model_fingerprint, settings, dtype)
    jobs = plan_images(request.entry.key, request.category, request.prompts, settings)
    todo = todo_jobs(request, jobs, fp)
    report = GenerationReport(fp, device, dtype, expected=len(jobs), present_before=len(jobs) - len(todo))
    if not todo:
        log(f"all {len(jobs)} images present for set {fp}; nothing to generate")
        return report

    started_load = time.perf_counter()
    pipe, report.pipeline_loaded = _load(request, device, dtype, pipe_cache)
    report.load_seconds = time.perf_counter() - started_load
    run = _SetRun(request, device, dtype, fp, report.load_seconds / len(todo), _library_versions())
    how = f"loaded in {report.load_seconds:.1f} s" if report.pipeline_loaded else "pipeline already loaded"
    log(f"{request.category}: generating {len(todo)} of {len(jobs)} images on {device}/{dtype} (set {fp}); {how}")
    _generate_batches(pipe, todo, run, report, log, should_stop)
    report.gpu_seconds = (report.load_seconds + report.seconds) * request.gpus
    return report
