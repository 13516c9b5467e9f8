"""Tiny random-weight models built in code, for ``make demo`` and for tests.

They are a few MB each, load through exactly the same paths as real
checkpoints (diffusers folder, single ``.safetensors`` file + config sidecar),
and never need the network.
"""
