"""The Dagster layer: partitions, assets, checks, sensors, schedules, jobs, resources.

Thin on purpose: assets call the core, compute and storage layers; no metric
maths and no SQL live here.
"""
