"""The drop-folder sensor: a model copied into ``data/models/`` becomes a
partition and gets its runs, with no code edited.

The decision logic lives in :mod:`bench_assets.models.drop_folder`; this module
only turns decisions into Dagster requests. A broken model is still launched:
its own partition run fails with a message naming the file, and the sensor
keeps ticking for everyone else.

A model gets one run covering its categories (a partition range), so the
run's process starts once and loads the model and each scorer once.

A tick reads what is cheap and bounded: the drop folder's entries (their stat
signatures; weights are hashed only when a signature changed), the prompt
suite file's stat (parsed again only when it changed: the categories whose prompts were added or edited
since the last tick get runs for every registered model) and the runs in flight. It never checks every recorded image: a bounded,
resumable *disk sweep* checks whole partitions until ``BENCH_SENSOR_SWEEP_IMAGES``
images (default ``DISK_SWEEP_IMAGES``; 0 turns it off) were compared with the
image store, and keeps where it stopped in the cursor, so a full pass takes
about (recorded images / that budget) ticks. Scoring refuses a changed file,
and ``bench status`` and the nightly schedule check every image
(docs/performance.md, "When a changed image is noticed").
"""


import hashlib
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg

from bench_assets.models.drop_folder import WatchState, decide, sweep_key, sweep_order
from bench_assets.models.registry import scan_models
from bench_assets.prompts.prompt import SPEC_SUFFIXES, edited_categories
from bench_assets.storage.status import disk_problems, images_made_from
from bench_assets.defs.active_runs import active_partitions, model_run_request
from bench_assets.defs.partitions import MODEL_DIM, model_partitions
from bench_assets.defs.resources import BenchResource

SENSOR_INTERVAL_SECONDS = 20
DISK_SWEEP_ENV = "BENCH_SENSOR_SWEEP_IMAGES"
DISK_SWEEP_IMAGES = 10_000  # recorded images a tick compares with the image store (whole partitions, at least one)


def disk_sweep_budget() -> int:
    """Images per tick for the disk sweep: ``BENCH_SENSOR_SWEEP_IMAGES`` or the default; 0 turns it off."""
    text = os.environ.get(DISK_SWEEP_ENV, "").strip()
    try:
        budget = int(text) if text else DISK_SWEEP_IMAGES
    except ValueError:
        budget = -1
    if budget < 0:
        raise ValueError(f"{DISK_SWEEP_ENV}={text!r}: expected a whole number of images per tick (0 turns it off)")
    return budget


_SUITE_READ: dict[tuple[str, int, int], dict[str, str]] = {}  # the last suite file read: (path, mtime, size) -> digests


def suite_digests(bench: BenchResource) -> dict[str, str]:
    """The suite's ``category_digests`` (its categories, in order), parsed again only when its file changed.

    Parsing a 10,000-prompt JSONL suite takes about 0.25 s, every tick; its
    ``stat`` is one call. A ``.suite.yaml`` spec names other files, so it is
    read every tick.
    """
    path = Path(bench.suite_path)
    try:
        info = path.stat()
    except OSError:
        info = None
    if info is None or path.suffix.lower() in SPEC_SUFFIXES:
        return bench.suite().category_digests()  # a missing file raises there, with its own message
    key = (str(path.absolute()), info.st_mtime_ns, info.st_size)
    if key not in _SUITE_READ:
        _SUITE_READ.clear()
        _SUITE_READ[key] = bench.suite().category_digests()
    return dict(_SUITE_READ[key])


def suite_categories(bench: BenchResource) -> list[str]:
    """The suite's categories in order (read as :func:`suite_digests` reads it)."""
    return list(suite_digests(bench))


def build_model_sensor(job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="model_drop_sensor",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers models dropped into data/models/ and launches one run per model.",
    )
    def model_drop_sensor(context: dg.SensorEvaluationContext, bench: BenchResource) -> dg.SensorResult:
        paths = bench.paths
        entries = scan_models(paths.models)
        decision = decide(entries, WatchState.from_cursor(context.cursor), time.time(), paths.cache)
        digests = suite_digests(bench)
        categories = list(digests)
        known = set(context.instance.get_dynamic_partitions(MODEL_DIM))
        new_keys = sorted({launch.entry.key for launch in decision.launches} - known)
        busy = active_partitions(context.instance, categories)
        run_requests = []
        for launch in decision.launches:
            model = launch.entry.key
            todo = [
                c for c in categories
                # Already generated from these exact weights (e.g. by `bench run`), or queued/running: nothing to add.
                if images_made_from(bench.warehouse, model, c) != launch.fingerprint and (model, c) not in busy
            ]
            context.log.info(f"{launch.reason} model {model} ({launch.entry.path}): {len(todo)} categories to run")
            if todo:
                run_requests.append(model_run_request(
                    model, todo, categories, run_key=f"{model}:{launch.fingerprint[:16]}:{','.join(todo)}",
                    reason=launch.reason,
                ))
        launched = {launch.entry.key for launch in decision.launches}
        repairs, decision.state.sweep = _disk_sweep(context, bench, sorted(known - launched), categories, busy,
                                                    decision.state.sweep)
        run_requests += repairs
        run_requests += _edited_prompt_requests(context, sorted(known - launched), decision.state.suite, digests,
                                                categories, busy)
        decision.state.suite = digests
        for entry in decision.waiting:
            context.log.info(f"waiting for {entry.path} to stop changing")
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[model_partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=decision.state.to_cursor(),
            skip_reason=None if run_requests else "no new or changed models",
        )

    return model_drop_sensor


def _disk_sweep(context, bench: BenchResource, models: list[str], categories: list[str], busy: set,
                start: str) -> tuple[list, str]:
    """Check the next partitions' recorded images against the image store, up to the tick's budget; runs for
    those whose files are no longer what was recorded (deleted, truncated, replaced), and where to go on."""
    budget = disk_sweep_budget()
    order = sweep_order([(m, c) for m in models for c in categories], start)
    if not budget or not order:
        return [], start
    problems: dict[str, dict[str, str]] = {}
    checked, resume = 0, ""
    for model, category in order:
        if checked >= budget:
            resume = sweep_key(model, category)
            break
        if (model, category) in busy:  # its run rewrites the manifest; the next pass checks it
            continue
        count, problem = disk_problems(bench.warehouse, model, category, images=bench.images)
        checked += max(count, 1)  # an empty partition still costs a read
        if problem:
            problems.setdefault(model, {})[category] = problem
    return [_repair_request(context, model, found, categories) for model, found in problems.items()], resume


def _edited_prompt_requests(context, models: list[str], before: dict[str, str], after: dict[str, str],
                            categories: list[str], busy: set) -> list:
    """Runs for the categories whose prompts were added or edited since the last tick (the workbench, an
    editor): every registered model's partitions there, which draw just the new or edited prompts' images."""
    edited = edited_categories(before, after)
    if not edited:
        return []
    context.log.info(f"prompts changed in {', '.join(edited)}: their partitions re-run")
    digest = hashlib.sha256("|".join(after[c] for c in edited).encode()).hexdigest()[:12]
    requests = []
    for model in models:
        todo = [c for c in edited if (model, c) not in busy]
        if todo:
            requests.append(model_run_request(model, todo, categories, run_key=f"{model}:prompts:{digest}",
                                              reason="prompts edited"))
    return requests


def _repair_request(context, model: str, problems: dict[str, str], categories: list[str]):
    todo = sorted(problems)
    context.log.info(f"{model}: images changed on disk in {', '.join(todo)}: " + problems[todo[0]])
    digest = hashlib.sha256("|".join(problems[c] for c in todo).encode()).hexdigest()[:12]
    return model_run_request(model, todo, categories, run_key=f"{model}:disk:{digest}", reason="files changed on disk")


FRESHNESS_INTERVAL_SECONDS = 30


def build_freshness_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions (leaderboard and what reads it), on by default.

    Dagster's implicit automation sensor starts stopped, so under ``dagster
    dev`` the leaderboard would never refresh after the sensor's runs.
    """
    return dg.AutomationConditionSensorDefinition(
        name="results_freshness",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
        description="Refreshes the leaderboard (and everything downstream) once benchmark runs finish.",
    )
