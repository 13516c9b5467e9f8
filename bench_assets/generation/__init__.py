"""Load image-generation pipelines and make images (plain Python + torch, no Dagster).

The same functions run in a local process, in a Modal container or in a notebook.
"""
