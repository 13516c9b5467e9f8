import os
import struct

import pytest

from bench_assets.core.models import ModelKind, fingerprint, partition_key, scan_models


def _safetensors(path, payload=b"\x00" * 16):
    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    path.write_bytes(struct.pack("<Q", len(header)) + header + payload)
    return path


@pytest.mark.parametrize("name", ["a|b", "x,y", "m[1]", "../../etc/passwd", "My Model", "a;rm -rf ~"])
def test_partition_keys_are_safe_and_stable(name):
    key = partition_key(name)
    assert key == partition_key(name)
    assert not set(key) & set("|,[]/ ;~"), key
    assert not key.startswith(".")


def test_clean_names_keep_their_spelling_and_unclean_ones_do_not_collide():
    assert partition_key("sdxl-base_1.0") == "sdxl-base_1.0"
    assert partition_key("My Model") != partition_key("my-model")


def test_scan_identifies_each_kind(tmp_path):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    _safetensors(tmp_path / "good.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(256))
    (tmp_path / "old.ckpt").write_bytes(b"pickle")
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / "good.settings.yaml").write_text("steps: 4\n")
    (tmp_path / "good.config").mkdir()
    kinds = {e.key: (e.kind, e.error) for e in scan_models(tmp_path)}
    assert kinds["pipe"] == (ModelKind.DIFFUSERS, None)
    assert kinds["good"] == (ModelKind.SINGLE_FILE, None)
    assert kinds["garbage"][0] is ModelKind.INVALID
    assert str(tmp_path / "garbage.safetensors") in kinds["garbage"][1]
    assert "pickle" in kinds["old"][1]
    assert "model_index.json" in kinds["notes"][1]
    assert set(kinds) == {"pipe", "good", "garbage", "old", "notes"}


def test_sidecar_settings_are_read(tmp_path):
    _safetensors(tmp_path / "m.safetensors")
    (tmp_path / "m.settings.yaml").write_text("steps: 4\nwidth: 512\n")
    (entry,) = scan_models(tmp_path)
    assert entry.settings_overrides() == {"steps": 4, "width": 512}


def test_fingerprint_follows_content_and_is_cached(tmp_path):
    path = _safetensors(tmp_path / "m.safetensors")
    cache = tmp_path / ".cache"
    (entry,) = scan_models(tmp_path)
    first = fingerprint(entry, cache)
    assert fingerprint(entry, cache) == first == fingerprint(entry)
    _safetensors(path, payload=b"\x01" * 16)
    os.utime(path, ns=(1, 2))  # a different signature forces a re-hash
    (changed,) = scan_models(tmp_path)
    assert fingerprint(changed, cache) != first
