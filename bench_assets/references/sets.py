"""A reference set as the metrics see it: named images with content hashes, optional captions, a fingerprint.

The fingerprint is over the images' sha256 (sorted, so the order of the
folder listing does not matter) and nothing else: renaming a file keeps it,
changing one image's bytes changes it, which is what makes the distribution
rows and the reference features cached under it stale.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, Callable

from bench_assets.core.errors import BenchError

REFERENCE_FINGERPRINT_VERSION = "ref-v1"  # bump if what the fingerprint covers changes


class ReferenceSetError(BenchError, ValueError):
    """A reference set (folder or card) that cannot be used; the message names it."""


@dataclass(frozen=True)
class ReferenceImage:
    """One readable image of a reference set: its name in the set, the sha256 of its bytes, its caption."""

    name: str  # the file's path relative to the set (or the dataset row's name)
    sha256: str
    caption: str | None = None


@dataclass(frozen=True)
class ReferenceSet:
    """A registered reference set: its images (readable ones only), what was left out and why, and how to read bytes.

    ``problems`` lists the broken or unreadable images by name; they are never
    scored and never part of the fingerprint. ``read`` returns an image's bytes
    by its name (a local folder, a bucket prefix through the store seam, or a
    dataset's exported files).
    """

    name: str
    source: str  # where it is read from, in words (a folder, a store URL, a dataset id)
    images: tuple[ReferenceImage, ...]
    read: Callable[[str], bytes] = field(repr=False, compare=False)
    problems: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(REFERENCE_FINGERPRINT_VERSION.encode())
        for sha in sorted(image.sha256 for image in self.images):
            digest.update(sha.encode())
        return digest.hexdigest()

    @property
    def captions(self) -> dict[str, str]:
        """Image name -> caption, for the images that have one."""
        return {image.name: image.caption for image in self.images if image.caption}

    def load(self, image: ReferenceImage) -> Any:
        """The image as RGB (PIL), read through the set's reader."""
        from PIL import Image  # pillow: only when pixels are needed

        with Image.open(io.BytesIO(self.read(image.name))) as img:
            return img.convert("RGB")
