"""Metrics: one module per metric, all behind :class:`bench_assets.metrics.base.Metric`."""
