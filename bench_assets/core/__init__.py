"""Plain-Python core: prompt suites, model references, settings, file naming.

Nothing here imports Dagster or torch, so every other layer (and a notebook)
can use it cheaply.
"""
