"""Which device the recorded seconds were measured on, and whether a GPU price applies to them.

Every manifest row records the ``device`` that generated it (``cuda``,
``cuda:1``, ``mps``, ``cpu``). ``bench cost`` multiplies seconds by a GPU's
hourly price; seconds measured on a CPU (the demo, CI) or a laptop's MPS say
nothing about what an H100 would take, so they are only priced when the user
asks for it explicitly, and the output says so either way.
"""

from __future__ import annotations

import os

import polars as pl

from bench_assets.core.config import ConfigError
from bench_assets.storage.leaderboard import H100_PRICE_PER_HOUR
from bench_assets.storage.warehouse import Warehouse

UNKNOWN_DEVICE = "unknown"
PRICE_ENV = "BENCH_GPU_PRICE_PER_HOUR"


def gpu_price_per_hour(explicit: float | None = None) -> float:
    """The hourly GPU price to apply: ``explicit`` (``--price-per-hour``) > ``BENCH_GPU_PRICE_PER_HOUR`` >
    Modal's H100 list price."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(PRICE_ENV, "").strip()
    if not raw:
        return H100_PRICE_PER_HOUR
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{PRICE_ENV} must be a price in dollars per hour, got {raw!r}") from None


def is_gpu_device(device: str) -> bool:
    """Seconds a rented GPU's price applies to: CUDA devices (local or on Modal)."""
    return device.lower().startswith("cuda")


def generation_devices(warehouse: Warehouse, images_table: str) -> dict[str, list[str]]:
    """Per model, the devices its images were generated on (rows without one: ``unknown``)."""
    images = warehouse.read_table(images_table)
    if images.is_empty():
        return {}
    if "device" not in images.columns:
        images = images.with_columns(pl.lit(None, dtype=pl.Utf8).alias("device"))
    devices = (
        images.with_columns(pl.col("device").fill_null(UNKNOWN_DEVICE))
        .group_by("model")
        .agg(pl.col("device").unique().sort())
    )
    return {row["model"]: list(row["device"]) for row in devices.iter_rows(named=True)}


def priced_at_gpu_rate(devices: list[str]) -> bool:
    """True when every device a model's seconds came from is a GPU."""
    return bool(devices) and all(is_gpu_device(d) for d in devices)
