"""model × category partitions.

``model`` is dynamic (the sensor adds a key per model dropped into
``data/models/``); ``category`` is static, read from the prompt suite when the
definitions load.
"""

from __future__ import annotations

import dagster as dg

from bench_assets.core.paths import DataPaths
from bench_assets.core.prompts import load_suite

MODEL_DIM = "model"
CATEGORY_DIM = "category"

model_partitions = dg.DynamicPartitionsDefinition(name=MODEL_DIM)


def build_partitions(paths: DataPaths) -> dg.MultiPartitionsDefinition:
    categories = load_suite(paths.default_suite()).categories
    return dg.MultiPartitionsDefinition(
        {MODEL_DIM: model_partitions, CATEGORY_DIM: dg.StaticPartitionsDefinition(categories)}
    )


def partition_key(model: str, category: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MODEL_DIM: model, CATEGORY_DIM: category})


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys[MODEL_DIM], keys[CATEGORY_DIM]
