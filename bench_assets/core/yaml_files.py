"""Reading the small YAML files users write (config, settings sidecars, model cards, suite specs, the instance config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """What ``path`` holds (None for an empty file); ``error`` names the file when it is not YAML.

    The parser's message is folded onto one line: every caller reports it as
    one line (``bench doctor``, the CLI's ``error:``, a failure row).
    OSError and UnicodeDecodeError pass through: each caller words them itself.
    """
    import yaml  # here, not at the top: modal_auth's pre-install check imports config without PyYAML

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None


def read_yaml_mapping(path: Path, error: type[Exception], expected: str) -> dict:
    """The mapping ``path`` holds (``{}`` for an empty file).

    ``error`` is raised naming the file when it is not YAML or not a mapping,
    ``expected`` saying what it should hold, so each caller keeps its own error type.
    """
    data = read_yaml(path, error) or {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected {expected}")
    return data
