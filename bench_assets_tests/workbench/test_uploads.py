"""read_upload: good images open; each bad upload is refused by its own check, with its own message, cheaply."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image

from bench_assets.workbench.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload


def _encoded(fmt: str, size: tuple[int, int] = (40, 30), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 10)).save(buf, format=fmt, **save)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG (valid IHDR and CRCs) declaring width x height, whose IDAT holds one row: a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 marker is rewritten to declare width x height."""
    data = bytearray(_encoded("JPEG", quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_good_image_opens_decoded(fmt: str) -> None:
    image = read_upload(_encoded(fmt), f"generated.{fmt.lower()}")
    assert image.size == (40, 30)
    # Decoded, not lazy: the pixels are there and the colour survived (JPEG/WebP are lossy: roughly).
    red, green, blue = image.convert("RGB").getpixel((20, 15))
    assert red > 150 and green < 90 and blue < 60


def test_jpeg_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image = read_upload(_encoded("JPEG", exif=exif.tobytes()), "phone.jpg")
    assert image.size == (30, 40)


@pytest.mark.parametrize("filename", ["../../x.png", "/etc/passwd.png", "sub/x.png", "..\\..\\x.png", "C:x.png",
                                      "x\x00.png", "..", "x\n.png", "a" * 300 + ".png"])
def test_a_path_or_odd_character_in_the_name_is_refused(filename: str) -> None:
    with pytest.raises(UploadError) as info:
        read_upload(_encoded("PNG"), filename)
    assert info.value.kind == "name"
    assert "file name" in str(info.value)


def test_an_empty_name_means_unnamed() -> None:
    assert read_upload(_encoded("PNG"), "").size == (40, 30)


def test_each_bad_upload_gets_its_own_error() -> None:
    png = _encoded("PNG")
    bad = {
        "not_image": (b"just some notes, renamed\n" * 10, "notes.png"),
        "unsupported": (_encoded("GIF"), "anim.png"),
        "empty": (b"", "x.png"),
        "too_large": (png, "x.png"),
        "too_many_pixels": (png_header_only(20000, 20000), "bomb.png"),
        "unreadable": (png[: len(png) // 2], "cut.png"),
    }
    messages = {}
    for kind, (data, name) in bad.items():
        with pytest.raises(UploadError) as info:
            read_upload(data, name, max_bytes=len(png) - 1 if kind == "too_large" else MAX_UPLOAD_BYTES)
        assert info.value.kind == kind, (kind, str(info.value))
        messages[kind] = str(info.value)
    assert len(set(messages.values())) == len(bad)
    assert "PNG, JPEG or WebP" in messages["not_image"] and "GIF" in messages["unsupported"]
    assert "20000 x 20000" in messages["too_many_pixels"]


def test_more_bytes_than_the_default_limit_are_refused_before_reading_them() -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES)
    with pytest.raises(UploadError, match="MiB") as info:
        read_upload(data, "huge.png")
    assert info.value.kind == "too_large"


def test_a_20000_square_png_header_is_refused_fast_and_never_reaches_pil(monkeypatch) -> None:
    def no_pil(*args, **kwargs):
        raise AssertionError("PIL was asked to open a decompression bomb")

    monkeypatch.setattr(Image, "open", no_pil)
    bomb = png_header_only(20000, 20000)
    assert len(bomb) < 200
    start = time.perf_counter()
    with pytest.raises(UploadError) as info:
        read_upload(bomb, "bomb.png")
    assert time.perf_counter() - start < 0.1
    assert info.value.kind == "too_many_pixels"


def test_a_jpeg_bomb_is_refused_from_its_header_whatever_pil_global_limit(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # another module switched PIL's own guard off
    with pytest.raises(UploadError) as info:
        read_upload(jpeg_claiming(20000, 20000), "bomb.jpg")
    assert info.value.kind == "too_many_pixels"
    # Below PIL's guard, the upload's own limit still applies (and so does PIL's, untouched, when it is lower).
    with pytest.raises(UploadError) as info:
        read_upload(jpeg_claiming(400, 300), "big.jpg", max_pixels=100_000)
    assert info.value.kind == "too_many_pixels"
    assert read_upload(_encoded("PNG"), "ok.png", max_pixels=40 * 30).size == (40, 30)
