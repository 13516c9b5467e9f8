"""bench_assets: an asset-orchestrated benchmark for image-generation models."""

__version__ = "0.1.0"
