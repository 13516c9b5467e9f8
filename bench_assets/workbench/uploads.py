"""An uploaded image, checked before it is decoded: the workbench's one way to read what a browser sends.

``read_upload(data, filename)`` returns the decoded image or raises
:class:`UploadError`, whose ``kind`` says which check refused it and whose
message says why, in words a person can act on. In order:

1. the file name is a plain name (no directory, no ``..``, no backslash, no
   drive, no NUL or other control character; empty means unnamed): nothing
   here writes a file, but a caller that keeps the image must never be
   handed a path;
2. the bytes are not empty and at most ``max_bytes`` (20 MiB);
3. the magic bytes are PNG, JPEG or WebP (``FORMATS``); a GIF, BMP, TIFF,
   ... is refused as unsupported, anything else as not an image;
4. the width × height the header declares is at most ``max_pixels``, read
   before any pixel is decoded (for PNG from the IHDR chunk by hand, for
   JPEG and WebP from PIL's lazy ``open``, which parses headers only), so a
   tiny file claiming 20000 × 20000 pixels (a decompression bomb) costs
   nothing. PIL's own guard (``Image.MAX_IMAGE_PIXELS``, a warning above it
   and an error above twice it) is process-wide and left as it is: its
   warning is raised as an error here and both become an ``UploadError``,
   so the limit that applies is the smaller of the two, whatever another
   module set the global to;
5. PIL, restricted to the format the magic bytes named, decodes it (a
   truncated or corrupt file is refused); an animation gives its first
   frame, and a JPEG's EXIF orientation is applied.

Nothing is written to disk.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import warnings
from typing import TYPE_CHECKING, Literal

from bench_assets.core.errors import BenchError

if TYPE_CHECKING:
    from PIL import Image

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# 40 megapixels: a 6000 x 6600 photo; a generated image is 1-4 MP. Decoded RGBA, 160 MB.
MAX_UPLOAD_PIXELS = 40_000_000
MAX_NAME_LENGTH = 255

UploadProblem = Literal["name", "empty", "too_large", "not_image", "unsupported", "too_many_pixels", "unreadable"]

# Accepted formats: PIL's format name -> how its files start.
FORMATS: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "WEBP": (b"RIFF",),  # and b"WEBP" at offset 8, checked in ``image_format``
}
# Images of other formats, named in the message rather than called "not an image": (offset, magic bytes).
OTHER_FORMATS: dict[str, tuple[tuple[int, bytes], ...]] = {
    "GIF": ((0, b"GIF87a"), (0, b"GIF89a")),
    "BMP": ((0, b"BM"),),
    "TIFF": ((0, b"II*\x00"), (0, b"MM\x00*")),
    "ICO": ((0, b"\x00\x00\x01\x00"),),
    "AVIF/HEIC": ((4, b"ftypavif"), (4, b"ftypheic"), (4, b"ftypmif1")),
    "SVG": ((0, b"<svg"),),
}


class UploadError(BenchError, ValueError):
    """An upload refused before anything was done with it; ``kind`` names the check, the message the fix."""

    def __init__(self, message: str, kind: UploadProblem) -> None:
        super().__init__(message)
        self.kind = kind


def check_filename(filename: str) -> str:
    """``filename`` if it is a plain file name ("" allowed: unnamed), else an ``UploadError`` of kind "name"."""
    shown = repr(filename[:80])
    if "/" in filename or "\\" in filename:
        raise UploadError(f"file name {shown} contains a path; send the file's name only", "name")
    if filename in (".", "..") or ":" in filename:
        raise UploadError(f"file name {shown} is not a plain file name", "name")
    if any(unicodedata.category(ch) == "Cc" for ch in filename):
        raise UploadError(f"file name {shown} contains a NUL or control character", "name")
    if len(filename.encode("utf-8", "surrogatepass")) > MAX_NAME_LENGTH:
        raise UploadError(f"file name is longer than {MAX_NAME_LENGTH} bytes", "name")
    return filename


def image_format(data: bytes) -> str:
    """The accepted format the magic bytes name ("PNG", "JPEG", "WEBP"); otherwise an ``UploadError``."""
    for name, magics in FORMATS.items():
        if data.startswith(magics) and (name != "WEBP" or data[8:12] == b"WEBP"):
            return name
    for name, signatures in OTHER_FORMATS.items():
        if any(data.startswith(magic, offset) for offset, magic in signatures):
            raise UploadError(f"{name} images are not supported; upload a PNG, JPEG or WebP", "unsupported")
    raise UploadError("not an image: the file does not start like a PNG, JPEG or WebP", "not_image")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format requires first, read without PIL."""
    if len(data) < 24 or data[8:16] != b"\x00\x00\x00\rIHDR":
        raise UploadError("not a readable PNG: its first chunk is not a valid IHDR", "unreadable")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise UploadError(f"the image header declares {width} x {height} pixels", "unreadable")
    if width * height > max_pixels:
        raise UploadError(
            f"the image is {width} x {height} pixels ({width * height / 1e6:.0f} MP); at most "
            f"{max_pixels / 1e6:g} MP are accepted (a file this small claiming so many is a decompression bomb)",
            "too_many_pixels")


def _opened(data: bytes, fmt: str, max_pixels: int) -> "Image.Image":
    """PIL's lazy open, restricted to ``fmt``: headers parsed, size checked, no pixel decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UploadError(f"the image declares too many pixels to decode safely ({exc})", "too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise UploadError(f"not a readable {fmt}: {exc}", "unreadable") from None
    check_pixels(image.size, max_pixels)
    return image


def _decoded(image: "Image.Image", fmt: str) -> "Image.Image":
    """The first frame's pixels, EXIF orientation applied; a truncated or corrupt file raises an ``UploadError``."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise UploadError(f"the {fmt} file is truncated or corrupt ({exc})", "unreadable") from None


def read_upload(
    data: bytes, filename: str = "", max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> "Image.Image":
    """The uploaded image, decoded, after every check of the module's docstring; else an ``UploadError``."""
    check_filename(filename)
    if not data:
        raise UploadError("the upload is empty", "empty")
    if len(data) > max_bytes:
        raise UploadError(f"the upload is {len(data) / 2**20:.1f} MiB; at most {max_bytes / 2**20:g} MiB "
                          "are accepted", "too_large")
    fmt = image_format(data)
    if fmt == "PNG":
        check_pixels(png_size(data), max_pixels)  # before PIL sees the file at all
    return _decoded(_opened(data, fmt, max_pixels), fmt)
