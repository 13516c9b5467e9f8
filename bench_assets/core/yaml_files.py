"""Reading the small YAML files users write (config, settings sidecars, the instance config)."""

from __future__ import annotations

from pathlib import Path


def read_yaml_mapping(path: Path, error: type[Exception], expected: str) -> dict:
    """The mapping ``path`` holds (``{}`` for an empty file).

    ``error`` is raised naming the file when it is not YAML or not a mapping,
    ``expected`` saying what it should hold, so each caller keeps its own error type.
    """
    import yaml  # here, not at the top: modal_auth's pre-install check imports config without PyYAML

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected {expected}")
    return data
