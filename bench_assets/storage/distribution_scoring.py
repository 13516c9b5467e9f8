"""Score one model's images against one reference set: features (cached), every distribution metric, the rows.

What the ``distribution_scores`` asset runs for a model × reference
partition, kept here so that the Dagster layer stays thin and the demo, the
CLI and the tests call the same function. Rows are per category (each prompt
category's images) and ``all`` (every category's images together); features
are extracted once per (extractor, image) through ``FeatureCache``, and each
extractor is loaded once per worker (``metrics.features.loaded_extractor``).
A partition whose rows already match the reference set's and the images'
fingerprints, the metrics' versions and the extractors' ids is left as it is.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bench_assets.core.config import BenchConfig
from bench_assets.core.naming import recorded_image_key
from bench_assets.core.objects import Store
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.distribution_base import DistributionMetric, DistributionSettings
from bench_assets.metrics.distribution_registry import chosen_metrics
from bench_assets.metrics.features import FeatureExtractor, extractor_options, get_extractor, loaded_extractor
from bench_assets.references.registry import load_reference_set, scan_reference_sets
from bench_assets.references.sets import ReferenceSet
from bench_assets.storage.distribution import (
    ALL_CATEGORIES,
    now_stamp,
    read_distribution_scores,
    write_distribution_scores,
)
from bench_assets.storage.features import FeatureCache, ImageSource, model_group, reference_group
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.store import configured_store
from bench_assets.storage.warehouse import Warehouse


@dataclass
class DistributionRun:
    """What scoring one partition did: its rows, and the cache's counts (extracted vs reused)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    extracted: int = 0
    reused: int = 0
    skipped: bool = False  # rows were already current


def images_fingerprint(shas: Sequence[str]) -> str:
    return hashlib.sha256("".join(sorted(shas)).encode()).hexdigest()


def _open_image(store: Store, key: str) -> Any:
    from PIL import Image  # pillow: only when pixels are needed

    with Image.open(io.BytesIO(store.get_bytes(key))) as image:
        return image.convert("RGB")


def model_images(warehouse: Warehouse, images: Store, model: str, categories: Sequence[str]) -> dict[str, list[ImageSource]]:
    """Each category's generated images (sha256 and loader) as its manifest records them; empty categories left out."""
    found = {}
    for category in categories:
        manifest = warehouse.read_partition(IMAGES_TABLE, model, category)
        if manifest is None or manifest.is_empty():
            continue
        found[category] = [(sha, lambda key=recorded_image_key(path): _open_image(images, key))
                           for sha, path in zip(manifest["sha256"], manifest["path"])]
    return found


def reference_images(reference: ReferenceSet) -> list[ImageSource]:
    return [(image.sha256, lambda image=image: reference.load(image)) for image in reference.images]


def _current(existing: Any, reference: ReferenceSet, fingerprints: Mapping[str, str],
             expected: set[tuple[str, str, str]]) -> bool:
    """Whether the partition's rows were made from these images, with these metric versions and extractors."""
    if existing.is_empty() or set(existing["reference_fingerprint"]) != {reference.fingerprint}:
        return False
    made = set(zip(existing["metric_version"], existing["extractor_id"], existing["category"]))
    stamps = dict(zip(existing["category"], existing["images_fingerprint"]))
    return made == expected and stamps == dict(fingerprints)


Plan = list[tuple[DistributionMetric, FeatureExtractor]]  # which extractor each chosen metric reads


def _plan(settings: DistributionSettings, metric_config: Mapping[str, Mapping[str, Any]],
          distribution_config: Mapping[str, Any]) -> Plan:
    """Each chosen metric with its extractor, not loaded yet: the ids say whether the rows are current."""
    pairs = []
    for metric in chosen_metrics(settings):
        name = metric.extractor_for(settings)
        options = {"batch_size": settings.batch_size, **extractor_options(name, metric_config, distribution_config)}
        pairs.append((metric, get_extractor(name, options)))
    return pairs


def _loaded(plan: Plan, device: str) -> Plan:
    """The plan with each extractor loaded on ``device`` (once per worker: ``loaded_extractor``)."""
    return [(metric, loaded_extractor(extractor.name, extractor.options, device)) for metric, extractor in plan]


def score_against_reference(
    warehouse: Warehouse, images: Store, model: str, categories: Sequence[str], reference: ReferenceSet, *,
    metric_config: Mapping[str, Mapping[str, Any]], distribution_config: Mapping[str, Any], device: str = "cpu",
) -> DistributionRun:
    """Score ``model``'s images of ``categories`` against ``reference``; write and return the partition's rows."""
    settings = DistributionSettings.from_section(distribution_config)
    by_category = model_images(warehouse, images, model, categories)
    groups = {ALL_CATEGORIES: [src for sources in by_category.values() for src in sources], **by_category}
    fingerprints = {category: images_fingerprint([sha for sha, _ in sources]) for category, sources in groups.items()}
    plan = _plan(settings, metric_config, distribution_config)
    expected = {(m.version, e.extractor_id, c) for m, e in plan for c in groups}
    existing = read_distribution_scores(warehouse, model, reference.name)
    if by_category and _current(existing, reference, fingerprints, expected):
        return DistributionRun(rows=existing.to_dicts(), skipped=True)
    cache = FeatureCache(warehouse, settings.batch_size)
    rows = _score_rows(cache, _loaded(plan, device), settings, model, reference, by_category,
                       fingerprints) if by_category else []
    write_distribution_scores(warehouse, model, reference.name, rows)
    return DistributionRun(rows=rows, extracted=cache.counts.extracted, reused=cache.counts.reused)


def _features(cache: FeatureCache, extractor: FeatureExtractor, model: str, reference: ReferenceSet,
              by_category: Mapping[str, list[ImageSource]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reference set's and each category's (and ``all``'s) feature matrices under one extractor."""
    ref = cache.features(extractor, reference_group(reference.name), reference_images(reference))
    per_category = {c: cache.features(extractor, model_group(model, c), sources) for c, sources in by_category.items()}
    return ref, {ALL_CATEGORIES: np.concatenate(list(per_category.values())), **per_category}


def _score_rows(cache: FeatureCache, plan: Plan, settings: DistributionSettings, model: str,
                reference: ReferenceSet, by_category: Mapping[str, list[ImageSource]],
                fingerprints: Mapping[str, str]) -> list[dict[str, Any]]:
    stamp, rows = now_stamp(), []
    features: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}  # extractor -> features, once per run
    for metric, extractor in plan:
        if extractor.name not in features:
            features[extractor.name] = _features(cache, extractor, model, reference, by_category)
        ref, per_category = features[extractor.name]
        for category, generated in per_category.items():
            for row in metric.compute(generated, ref, settings, settings.seed):
                rows.append({**row, "model": model, "reference": reference.name, "category": category,
                             "extractor": extractor.name, "extractor_id": extractor.extractor_id,
                             "reference_fingerprint": reference.fingerprint,
                             "images_fingerprint": fingerprints[category], "scored_at": stamp})
    return rows


def _prefix_opener(paths: DataPaths, config: BenchConfig) -> Callable[[str], Store]:
    """How a card's ``store_prefix`` is read: a child of the configured store."""
    return lambda prefix: configured_store(paths, config).child(prefix)


def open_reference_sets(paths: DataPaths, config: BenchConfig) -> tuple[dict[str, ReferenceSet], dict[str, str]]:
    """Every reference set of ``data/references/`` (store prefixes read through the configured store), and the
    entries that do not load, each with why."""
    return scan_reference_sets(paths.references, open_prefix=_prefix_opener(paths, config), cache=paths.cache)


def open_reference_set(paths: DataPaths, config: BenchConfig, name: str) -> ReferenceSet:
    """The reference set ``name`` alone (raises ``ReferenceSetError`` saying why it does not load)."""
    return load_reference_set(paths.references, name, open_prefix=_prefix_opener(paths, config), cache=paths.cache)
