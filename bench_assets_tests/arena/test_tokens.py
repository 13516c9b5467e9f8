"""Signed tokens, image ids and sessions: what a forger can and cannot do."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bench_assets.arena.png import pixels_only
from bench_assets.arena.tokens import Signer


def test_pair_tokens_bind_the_voter_and_resist_tampering():
    signer = Signer(b"k" * 32)
    nonce = Signer.new_nonce()
    token = signer.pair_token(nonce, "alice")
    assert signer.open_pair_token(token, "alice") == nonce
    assert signer.open_pair_token(token, "bob") is None
    assert signer.open_pair_token(Signer.new_nonce() + token[32:], "alice") is None
    assert Signer(b"x" * 32).open_pair_token(token, "alice") is None
    assert signer.open_pair_token("", "alice") is None and signer.open_pair_token("no-dot", "alice") is None


def test_image_ids_and_sessions():
    signer = Signer(b"k" * 32, shared_token="t1")
    nonce = Signer.new_nonce()
    left, right = signer.image_id(nonce, "left"), signer.image_id(nonce, "right")
    assert signer.open_image_id(left) == (nonce, "left") and signer.open_image_id(right) == (nonce, "right")
    assert left[:32] == nonce and left != right
    assert signer.open_image_id(right[:32] + "0" + right[33:]) is None  # side swapped
    assert signer.open_image_id("../../etc/passwd") is None
    session = signer.session("Zoë 🎨")
    assert signer.open_session(session) == "Zoë 🎨"
    assert Signer(b"k" * 32, shared_token="t2").open_session(session) is None  # token changed: join again
    assert signer.open_session(None) is None and signer.open_session("x.y") is None
    assert signer.same_token("t1", "t1") and not signer.same_token(None, "t1")


def test_served_pngs_keep_pixels_and_drop_provenance():
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    info = PngInfo()
    info.add_text("bench_assets", '{"model": "secret-model", "set_fingerprint": "abc"}')
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    served = pixels_only(buffer.getvalue())
    assert b"secret-model" in buffer.getvalue() and b"secret-model" not in served
    with Image.open(io.BytesIO(served)) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), pixels) and not image.text
    jpeg = io.BytesIO()
    Image.fromarray(pixels).save(jpeg, format="JPEG")
    assert pixels_only(jpeg.getvalue()).startswith(b"\x89PNG")
