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


def image_key(model: str, category: str, name: ImageName) -> str:
    """An image's key relative to the image store: ``<model>/<category>/<prompt_id>_i<k>_s<seed>.png``."""
    return f"{model}/{category}/{name.filename}"


# An image location is ``<model>/<category>/<file>`` under its image root (the archive's model folder is
# ``<model>@<fingerprint>``), so the key is always the last three parts of any path a row ever recorded.
KEY_PARTS = 3


def recorded_image_key(value: str) -> str:
    """The image key a row's ``path``/``image_path`` stands for, whatever it recorded.

    Rows hold keys (``m/c/p_i0_s0.png``); rows written before the storage
    seam held absolute paths (``/home/me/data/images/m/c/p_i0_s0.png``),
    possibly of a data directory that has moved since. Both name the same
    key by the layout above, so every reader resolves either kind the same
    way, and ``bench migrate`` rewrites the old kind with this function.
    """
    text = str(value).replace("\\", "/")
    if not is_absolute_location(text):
        return text.strip("/")
    return "/".join(text.rstrip("/").split("/")[-KEY_PARTS:])


def is_absolute_location(value: str) -> bool:
    """An absolute path (posix, Windows drive) or a URL, as older rows recorded; a key is neither."""
    text = str(value).replace("\\", "/")
    return text.startswith("/") or "://" in text or bool(re.match(r"^[A-Za-z]:/", text))


def parse_image_name(filename: str) -> ImageName | None:
    match = _IMAGE_RE.match(filename)
    if not match:
        return None
    return ImageName(match["prompt_id"], int(match["index"]), int(match["seed"]))
