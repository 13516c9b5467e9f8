"""Serve image pixels, not provenance.

Benchmark PNGs carry a ``bench_assets`` text chunk (set fingerprint, model
fingerprint, settings...): sent as is, it would tell a curious voter which
model made the image. The arena sends the critical chunks only.
"""

from __future__ import annotations

import io
import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels and how to read them; everything else (text, time, EXIF, ...) is dropped.
KEPT_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs"}


def pixels_only(data: bytes) -> bytes:
    """The PNG with only the chunks in ``KEPT_CHUNKS``; any other format is re-encoded as a bare PNG."""
    if not data.startswith(PNG_SIGNATURE):
        return _reencode(data)
    out, pos = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if kind in KEPT_CHUNKS:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(out)


def _reencode(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()
