"""One model in the drop folder (``ModelEntry``) and its partition key.

Plain data that every layer passes around: the registry builds entries, the
kinds' loaders and fingerprints read them, the sensor and the assets carry
them. ``kind`` is a key of ``MODEL_KINDS`` (``models/kinds.py``), a plain
string, so a new kind is one row there and nothing here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_assets.core.yaml_files import read_yaml_mapping
from bench_assets.models.cards import SETTINGS_SIDECAR, ModelCard

CONFIG_SIDECAR = ".config"
KEY_MAX = 48


@dataclass(frozen=True)
class ModelEntry:
    """One model in the drop folder."""

    key: str
    name: str
    path: Path
    kind: str  # a key of MODEL_KINDS
    signature: str
    newest_mtime: float = 0.0
    error: str | None = None
    card: ModelCard | None = None  # for entries described by a card (path is then the card)
    base: "ModelEntry | None" = None  # a LoRA's base model

    @property
    def settings_sidecar(self) -> Path:
        return self.path.parent / f"{self.name}{SETTINGS_SIDECAR}"

    @property
    def config_sidecar(self) -> Path:
        """A diffusers config folder for a single-file checkpoint (no hub needed)."""
        return self.path.parent / f"{self.name}{CONFIG_SIDECAR}"

    def settings_overrides(self) -> dict[str, Any]:
        """Generation settings this model asks for (e.g. 512² for SD 1.5).

        Later wins: a LoRA's base model's own overrides, then the card's
        (``settings``, ``dtype``, ``scheduler``, ``grid``), then the
        ``<name>.settings.yaml`` sidecar. The sidecar wins because it is the one
        override file every kind of model has, so a tweak made there (a quick
        low-resolution pass, a test) works the same for cards and files.
        """
        inherited = self.base.settings_overrides() if self.base is not None else {}
        from_card = self.card.settings if self.card is not None else {}
        return {**inherited, **from_card, **self._sidecar_overrides()}

    def dependencies(self) -> list[Path]:
        """Local files besides ``path`` that loading needs (a LoRA's file and base, a checkpoint)."""
        files = list(self.card.references) if self.card is not None else []
        if self.base is not None:
            if self.base.card is None:
                files.append(self.base.path)
            if self.base.config_sidecar.is_dir():
                files.append(self.base.config_sidecar)
            files += self.base.dependencies()
        return files

    def _sidecar_overrides(self) -> dict[str, Any]:
        sidecar = self.settings_sidecar
        if not sidecar.is_file():
            return {}
        return read_yaml_mapping(sidecar, ValueError, "a mapping of setting: value")


def partition_key(name: str) -> str:
    """A stable key that is safe in multi-partition keys and file paths.

    Names that are already clean keep their spelling; anything that had to be
    changed gets a short hash of the original, so ``My Model`` and ``my-model``
    never collide.
    """
    clean = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    clean = re.sub(r"[-.]{2,}", "-", clean).strip("-._")[:KEY_MAX] or "model"
    if clean == name:
        return clean
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:6]  # any bytes a file name has
    return f"{clean}-{digest}"
