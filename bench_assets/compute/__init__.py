"""Where layer-2 work runs. Every backend has the same two calls: ``generate`` and ``score``."""
