"""The Modal backend: H100 functions that run the same generation and scoring code.

Dagster starts ``modal run bench_assets/compute/modal_app.py::run_partition``
as a Pipes subprocess (``dagster_modal.ModalClient``). The local entrypoint
runs on the user's machine: it opens the Pipes session, works out what is
missing from the image store (one listing, checked against the manifest rows
the asset sent), uploads the model's weights to a Volume once, fans the
missing images out over GPU containers with ``.map``, and sends the report
(with the manifest rows of the images written) or the score rows back to
Dagster as Pipes messages. The asset then writes the warehouse rows exactly
as it does for the local backend.

Where the images go depends on the image store (``storage: {root: ...}``):

- an object store (``s3://bucket/prefix``): each container opens the store
  itself and writes its PNGs straight into the bucket, and scoring
  containers read them from there; no PNG byte passes through the launching
  machine or the Pipes channel, only keys and rows. The bucket's credentials
  reach the containers through the Modal Secret named in
  ``compute: {modal_secret: ...}`` (added to ``BENCH_MODAL_SECRETS``);
  the endpoint (``storage: {endpoint_url:}``) travels with the store's root.
- a local folder (the default): containers write to the results Volume and
  return the PNG bytes, which the entrypoint puts into the local store under
  the same keys; scoring ships the bytes to the container.

The container functions import ``bench_assets`` itself (``add_local_python_source``):
there is no second copy of the generation or metric code. They import it inside
each function, when it runs in its container: ``modal run`` imports this file
on the launching machine only to define the app, which must not pull in the
generation and metric stack (torch, diffusers) there.

Run as ``python -m bench_assets.compute.modal_app`` (what the tests do), the
same entrypoint calls the functions with Modal's ``.local()`` instead of
``.remote()``/``.map()``: no container, no credentials, same code path.

Resources created on first use (``create_if_missing``):
- Volume ``bench-assets-hf-cache`` at /cache: Hugging Face and torch-hub downloads, kept across runs.
- Volume ``bench-assets-models`` at /models: uploaded local weights, one folder per sha256.
- Volume ``bench-assets-results`` at /results: every PNG generated for a local image store, so an
  interrupted partition resumes from the volume.
Secrets: the Modal secrets named in ``BENCH_MODAL_SECRETS`` (comma-separated), e.g.
one made with ``modal secret create bench-assets-tokens HF_TOKEN=...``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import modal

from bench_assets.compute.modal_limits import GPU_ENV, MAX_CONTAINERS_ENV, max_containers, modal_gpu

APP_NAME = "bench-assets"
GPU = modal_gpu()
MAX_CONTAINERS = max_containers()
TIMEOUT_S = int(os.environ.get("BENCH_MODAL_TIMEOUT_S", str(2 * 3600)))
IMAGES_PER_CALL = int(os.environ.get("BENCH_MODAL_IMAGES_PER_CALL", "32"))
SECRET_NAMES = [s.strip() for s in os.environ.get("BENCH_MODAL_SECRETS", "").split(",") if s.strip()]
CACHE_DIR = "/cache"  # HF_HOME and TORCH_HOME (LPIPS' AlexNet) live here
HF_CACHE_DIR = f"{CACHE_DIR}/huggingface"
MODELS_DIR = "/models"
RESULTS_DIR = "/results"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_CONFIG_ENV = {
    GPU_ENV: GPU,
    MAX_CONTAINERS_ENV: str(MAX_CONTAINERS),
    "BENCH_MODAL_TIMEOUT_S": str(TIMEOUT_S),
    "BENCH_MODAL_SECRETS": ",".join(SECRET_NAMES),
    "HF_HOME": HF_CACHE_DIR,
    "TORCH_HOME": f"{CACHE_DIR}/torch",
}


def _container_packages() -> list[str]:
    """The project's own dependencies (one list, in pyproject.toml), minus the orchestrator."""
    pyproject = _REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file():  # inside the container the image is already built
        return []
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d for d in deps if not d.startswith(("dagster", "modal"))]


image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("libgl1", "libglib2.0-0")  # OpenCV, for RapidOCR
    .uv_pip_install(*_container_packages())
    .env(_CONFIG_ENV)
    .add_local_python_source("bench_assets")
)
app = modal.App(APP_NAME, image=image)
hf_cache = modal.Volume.from_name("bench-assets-hf-cache", create_if_missing=True)
models_volume = modal.Volume.from_name("bench-assets-models", create_if_missing=True)
results_volume = modal.Volume.from_name("bench-assets-results", create_if_missing=True)
_GPU_FUNCTION = dict(
    gpu=GPU,
    volumes={CACHE_DIR: hf_cache, MODELS_DIR: models_volume, RESULTS_DIR: results_volume},
    secrets=[modal.Secret.from_name(name) for name in SECRET_NAMES],
    timeout=TIMEOUT_S,
    max_containers=MAX_CONTAINERS,
    scaledown_window=120,
)

# One pipeline per container, reused by every call the container serves.
_PIPELINES: dict = {}


def _in_container() -> bool:
    return not modal.is_local()


# --------------------------------------------------------------------------- container side


def _container_store(spec: dict[str, Any] | None, fallback: Callable[[], Any]) -> Any:
    """The image store a container works in: the bucket itself, or ``fallback()`` for a local store."""
    from bench_assets.storage.store import open_store

    return open_store(**spec) if spec else fallback()


def _results_store() -> Any:
    """Where a container writes the PNGs of a local image store: the results Volume (or a temp dir)."""
    from bench_assets.storage.store import open_store

    if _in_container():
        return open_store(Path(RESULTS_DIR) / "images")
    return open_store(Path(tempfile.mkdtemp(prefix="bench-modal-")))


@app.function(**_GPU_FUNCTION)
def generate_chunk(payload: dict[str, Any]) -> dict[str, Any]:
    """Make the images ``payload["only"]`` names; return the report (with their manifest rows).

    With an object store (``payload["images"]``) the PNGs go straight into
    the bucket and only rows come back; with a local store they are written
    to the results Volume and their bytes come back in ``"png"`` (key -> bytes).
    """
    from bench_assets.compute.local import quiet_progress_bars
    from bench_assets.models.registry import find_model
    from bench_assets.generation.generate import GenerationRequest, generate_image_set

    quiet_progress_bars()
    direct = payload["images"] is not None
    images = _container_store(payload["images"], _results_store)
    # The entry is rebuilt from the files as this container sees them (its own paths).
    entry = find_model(Path(payload["models_root"]), payload["model"])
    request = GenerationRequest(
        entry=entry,
        model_fingerprint=payload["model_fingerprint"],
        category=payload["category"],
        prompts=payload["prompts"],
        settings=payload["settings"],
        images=images,
        runtime=payload["runtime"],
        only=tuple(payload["only"]),
        known=tuple(payload["known"]),
    )
    report = generate_image_set(request, log=print, pipe_cache=_PIPELINES)
    png = {} if direct else _volume_images(images, request, report)
    if _in_container() and not direct:
        results_volume.commit()
    return {"report": report, "png": png, "gpu_name": _gpu_name()}


def _volume_images(images: Any, request: Any, report: Any) -> dict[str, bytes]:
    """key -> PNG bytes of every requested image the results Volume holds, made now or by an
    interrupted earlier call; ``report.written`` becomes their rows."""
    from bench_assets.generation.image_set import plan_images, stored_rows

    wanted = set(request.only or ())
    jobs = [job for job in plan_images(request.entry.key, request.category, request.prompts, request.settings)
            if (job.prompt.id, job.index) in wanted]
    report.written = list(stored_rows(images, jobs, report.set_fingerprint, report.written).values())
    return {row["path"]: images.get_bytes(row["path"]) for row in report.written}


@app.function(**_GPU_FUNCTION)
def score_chunk(payload: dict[str, Any]) -> dict[str, Any]:
    """Score the items (none of them cached) and return the rows.

    With an object store each image is read from the bucket by its key; with
    a local store the bytes came in ``payload["png"]`` and are put in a
    scratch folder under the same keys. Either way rows record the key.
    """
    from bench_assets.compute.local import LocalCompute
    from bench_assets.storage.store import open_store

    images = _container_store(payload["images"], lambda: open_store(Path(tempfile.mkdtemp(prefix="bench-score-"))))
    for key, data in payload["png"].items():
        images.put_bytes(key, data)
    items = [dataclasses.replace(item, store=images) for item in payload["items"]]
    outcome = LocalCompute().score(payload["metric"], payload["options"], items, [], log=print)
    return {"outcome": outcome, "gpu_name": _gpu_name()}


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- local entrypoint side


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _uploaded(folder: str) -> bool:
    try:
        return any(entry.path.endswith(".complete") for entry in models_volume.listdir(folder))
    except (FileNotFoundError, modal.exception.NotFoundError):
        return False


def _upload_model(entry: Any, fingerprint: str, models_dir: Path) -> str:
    """Mirror the entry's files onto the models Volume once per sha256; the folder it is in there.

    Paths keep their place relative to ``data/models``, so a card's relative
    references (a LoRA file, a base model) resolve in the container as they do here.
    """
    folder = fingerprint[:32]
    if not _uploaded(folder):
        with models_volume.batch_upload(force=True) as batch:
            for local in _model_files(entry):
                try:
                    relative = local.resolve().relative_to(models_dir.resolve())
                except ValueError:
                    raise ValueError(
                        f"{entry.path}: {local} is outside {models_dir}; on Modal, every file a model "
                        "needs must be inside data/models"
                    ) from None
                remote = f"/{folder}/{relative}"
                (batch.put_directory if local.is_dir() else batch.put_file)(str(local), remote)
            batch.put_file(_marker_file(), f"/{folder}/.complete")  # in the same batch: all or nothing
    return f"{MODELS_DIR}/{folder}"


def _marker_file() -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".complete", delete=False)
    handle.write(f"uploaded {time.time()}\n")
    handle.close()
    return handle.name


def _model_files(entry: Any) -> list[Path]:
    """The files a container needs to load ``entry``: weights or card, config sidecar, referenced files."""
    files = [entry.path, *entry.dependencies()]
    if entry.config_sidecar.is_dir():
        files.append(entry.config_sidecar)
    return list(dict.fromkeys(files))


def _merge(total: Any, part: Any) -> None:
    total.generated += part.generated
    total.written += part.written
    total.failures += part.failures
    total.seconds += part.seconds
    total.load_seconds += part.load_seconds
    total.gpu_seconds += part.gpu_seconds
    total.device = part.device


def _store_locally(images: Any, png: dict[str, bytes], rows: list[dict]) -> list[dict]:
    """Put a container's PNGs into the local image store; their rows with this store's size and mtime."""
    for key, data in png.items():
        images.put_bytes(key, data)
    stamps = {row["path"]: images.info(row["path"]) for row in rows}
    return [{**row, "size": stamps[row["path"]].size, "mtime_ns": stamps[row["path"]].mtime_ns,
             "etag": stamps[row["path"]].etag} for row in rows]


def drive_generation(extras: dict[str, Any], call_map: Callable, remote: bool, log: Callable[[str], None]) -> dict:
    """Generate what the partition is missing, through ``call_map(generate_chunk, payloads)``."""
    from bench_assets.models.registry import find_model
    from bench_assets.core.paths import DataPaths
    from bench_assets.prompts.prompt import Prompt
    from bench_assets.core.settings import GenerationSettings, set_fingerprint
    from bench_assets.storage.store import open_store, store_kind
    from bench_assets.generation.generate import GenerationReport
    from bench_assets.generation.image_set import missing_jobs, plan_images
    from bench_assets.generation.pipelines import resolve_device, resolve_dtype
    from bench_assets.generation.runtime import RuntimeOptions

    paths = DataPaths(Path(extras["data_dir"]))
    images = open_store(**extras["images"])
    direct = store_kind(images.url).remote  # an object store: containers write into it themselves
    entry = find_model(paths.models, extras["model"])
    settings = GenerationSettings(**extras["settings"])
    prompts = tuple(Prompt(**p) for p in extras["prompts"])
    device = "cuda" if remote else resolve_device("auto")
    dtype = resolve_dtype(settings.precision, device)
    fp = set_fingerprint(extras["model_fingerprint"], settings, dtype)
    jobs = plan_images(entry.key, extras["category"], prompts, settings)
    todo = missing_jobs(images, jobs, fp, extras["known"])
    report = GenerationReport(fp, device, dtype, expected=len(jobs), present_before=len(jobs) - len(todo))
    gpu_names: set[str] = set()
    if todo:
        models_root = _upload_model(entry, extras["model_fingerprint"], paths.models) if remote else str(paths.models)
        payloads = [
            {"models_root": models_root, "model": entry.key, "model_fingerprint": extras["model_fingerprint"],
             "category": extras["category"], "prompts": prompts, "settings": settings,
             "runtime": RuntimeOptions(**extras["runtime"]), "only": [(job.prompt.id, job.index) for job in chunk],
             "images": extras["images"] if direct else None, "known": extras["known"]}
            for chunk in _chunks(todo, max(IMAGES_PER_CALL, settings.batch_size))
        ]
        log(f"{len(todo)} of {len(jobs)} images to make in {len(payloads)} call(s) on {GPU if remote else device}")
        for result in call_map(generate_chunk, payloads):
            part = result["report"]
            if not direct:
                part.written = _store_locally(images, result["png"], part.written)
            _merge(report, part)
            gpu_names.add(result["gpu_name"])
            log(f"{report.generated}/{len(todo)} images written, {len(report.failures)} failed")
    return {"kind": "generation", "report": _report_json(report), "gpu_names": sorted(gpu_names)}


def _report_json(report: Any) -> dict:
    data = dataclasses.asdict(report)
    data["failures"] = [dataclasses.asdict(f) for f in report.failures]
    return data


def drive_scoring(extras: dict[str, Any], call_map: Callable, log: Callable[[str], None]) -> dict:
    """Score the partition's uncached images through ``call_map(score_chunk, [payload])``.

    Items travel as keys; with a local image store their bytes go along, with
    an object store the container reads them from the bucket.
    """
    from bench_assets.storage.store import open_store, store_kind
    from bench_assets.metrics.base import ImageItem
    from bench_assets.metrics.registry import get_metric
    from bench_assets.metrics.runner import split_cached

    images = open_store(**extras["images"]) if extras["images"] else None
    direct = images is not None and store_kind(images.url).remote
    items = [ImageItem.from_json(i, images) for i in extras["items"]]
    metric = get_metric(extras["metric"], extras["options"])
    cached, todo, skipped = split_cached(metric, items, extras["existing"])
    computed: list[dict] = []
    gpu_seconds = 0.0
    gpu_names: set[str] = set()
    if todo:
        log(f"{metric.name}: {len(todo)} images to score remotely, {len(cached)} rows cached")
        payload = {"metric": metric.name, "options": extras["options"],
                   "items": [dataclasses.replace(item, store=None) for item in todo],
                   "images": extras["images"] if direct else None,
                   "png": {} if direct else {item.key: item.read_bytes() for item in todo}}
        for result in call_map(score_chunk, [payload]):
            outcome = result["outcome"]
            gpu_seconds += outcome.gpu_seconds
            gpu_names.add(result["gpu_name"])
            computed += outcome.rows
    return {"kind": "scores", "rows": cached + computed, "computed": len(computed), "cached": len(cached),
            "skipped_prompts": skipped, "gpu_seconds": gpu_seconds, "gpu_names": sorted(gpu_names)}


def _remote_map(function: Any, payloads: list) -> Iterable:
    return function.map(payloads, order_outputs=False)


def _local_map(function: Any, payloads: list) -> Iterable:
    return (function.local(payload) for payload in payloads)


def run_request(extras: dict[str, Any], remote: bool, log: Callable[[str], None]) -> dict:
    """Drive one request (Pipes extras) to its result message; a model that cannot load is a result too."""
    call_map = _remote_map if remote else _local_map
    started = time.perf_counter()
    try:
        if extras["op"] == "generate":
            result = drive_generation(extras, call_map, remote, log)
        else:
            result = drive_scoring(extras, call_map, log)
    except Exception as exc:
        from bench_assets.generation.pipelines import ModelLoadError

        if not isinstance(exc, ModelLoadError):
            raise
        result = {"kind": "model_load_error", "message": str(exc)}
    result["wall_seconds"] = time.perf_counter() - started
    return result


def run_with_pipes(remote: bool) -> None:
    """The Pipes session: read the request from Dagster, drive the work, send the result back."""
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        pipes.report_custom_message(run_request(dict(pipes.extras), remote, pipes.log.info))


@app.local_entrypoint()
def run_partition() -> None:
    run_with_pipes(remote=True)


if __name__ == "__main__":
    run_with_pipes(remote=False)
