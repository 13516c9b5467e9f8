"""File names of the data contract: where an image of (model, category, prompt, k) lives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_IMAGE_RE = re.compile(r"^(?P<prompt_id>.+)_i(?P<index>\d+)_s(?P<seed>\d+)\.png$")


@dataclass(frozen=True)
class ImageName:
    prompt_id: str
    index: int
    seed: int

    @property
    def filename(self) -> str:
        return f"{self.prompt_id}_i{self.index}_s{self.seed}.png"


def image_path(images_dir: Path, model: str, category: str, name: ImageName) -> Path:
    """``data/images/<model>/<category>/<prompt_id>_i<k>_s<seed>.png``."""
    return images_dir / model / category / name.filename


def parse_image_name(filename: str) -> ImageName | None:
    match = _IMAGE_RE.match(filename)
    if not match:
        return None
    return ImageName(match["prompt_id"], int(match["index"]), int(match["seed"]))
