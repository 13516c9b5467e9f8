"""model × category partitions, and runs that cover several of them.

``model`` is dynamic (the sensor adds a key per model dropped into
``data/models/``); ``category`` is static, read from the prompt suite when the
definitions load.

A partition is the unit users see, materialize and read; a *run* covers one
model's categories at once (a partition range: Dagster's single-run
backfill), so its process starts once and each model loads once.
"""

from __future__ import annotations

from typing import Sequence

import dagster as dg

from bench_assets.core.paths import DataPaths
from bench_assets.prompts.suites import load_suite

MODEL_DIM = "model"
CATEGORY_DIM = "category"
REFERENCE_DIM = "reference"  # reference sets (data/references/), registered by the reference sensor

# Dagster's run tags for a partition range (a single-run backfill): documented tag names, no public constant.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

model_partitions = dg.DynamicPartitionsDefinition(name=MODEL_DIM)
reference_partitions = dg.DynamicPartitionsDefinition(name=REFERENCE_DIM)
# The distribution metrics' partitions: a model's images (every category) against one reference set.
model_reference_partitions = dg.MultiPartitionsDefinition({MODEL_DIM: model_partitions,
                                                           REFERENCE_DIM: reference_partitions})
# Reads a key's string form by Dagster's own rule (dimension order), whatever the categories are.
_KEY_READER = dg.MultiPartitionsDefinition({MODEL_DIM: model_partitions,
                                            CATEGORY_DIM: dg.StaticPartitionsDefinition(["any"])})


def build_partitions(paths: DataPaths) -> dg.MultiPartitionsDefinition:
    categories = load_suite(paths.default_suite()).categories
    return dg.MultiPartitionsDefinition(
        {MODEL_DIM: model_partitions, CATEGORY_DIM: dg.StaticPartitionsDefinition(categories)}
    )


def partition_key(model: str, category: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MODEL_DIM: model, CATEGORY_DIM: category})


def model_reference_key(model: str, reference: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MODEL_DIM: model, REFERENCE_DIM: reference})


def split_model_reference(key: dg.MultiPartitionKey | str) -> tuple[str, str]:
    """(model, reference) of a model × reference partition key, as an object or as its string."""
    by_dim = getattr(key, "keys_by_dimension", None)
    if by_dim is None:
        by_dim = model_reference_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
    return by_dim[MODEL_DIM], by_dim[REFERENCE_DIM]


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys[MODEL_DIM], keys[CATEGORY_DIM]


def parse_key(key: str) -> tuple[str, str]:
    """(model, category) of a multi-partition key, as an object or as its "category|model" string."""
    by_dim = getattr(key, "keys_by_dimension", None)
    if by_dim is None:
        by_dim = _KEY_READER.get_partition_key_from_str(str(key)).keys_by_dimension
    return by_dim[MODEL_DIM], by_dim[CATEGORY_DIM]


def run_partitions(context: dg.AssetExecutionContext) -> list[tuple[str, str]]:
    """Every (model, category) this run covers: one partition, or a model's categories."""
    return [parse_key(key) for key in context.partition_keys]


def model_range_tags(model: str, categories: Sequence[str], suite_categories: Sequence[str]) -> dict[str, str]:
    """Run tags covering ``model`` × ``categories`` in one run.

    A multi-partition range is a box, so it spans from the first to the last
    of ``categories`` in suite order; categories between them that are already
    done cost a cache look-up each.
    """
    order = sorted(suite_categories.index(c) for c in categories)
    first, last = suite_categories[order[0]], suite_categories[order[-1]]
    return {
        ASSET_PARTITION_RANGE_START_TAG: str(partition_key(model, first)),
        ASSET_PARTITION_RANGE_END_TAG: str(partition_key(model, last)),
    }


def run_partition_keys(tags: dict[str, str], partition: str | None, suite_categories: Sequence[str]) -> list[tuple[str, str]]:
    """The (model, category) pairs a queued or running run covers, from its tags."""
    if partition:
        return [parse_key(partition)]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if not start or not end:
        return []
    (model, first), (_, last) = parse_key(start), parse_key(end)
    if first not in suite_categories or last not in suite_categories:
        return []
    i, j = sorted((suite_categories.index(first), suite_categories.index(last)))
    return [(model, c) for c in suite_categories[i : j + 1]]
