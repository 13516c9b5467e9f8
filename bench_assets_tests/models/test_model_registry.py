import os
import re
import time
import struct

import pytest

from bench_assets.models.registry import ModelKind, fingerprint, partition_key, scan_models


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
    assert kinds["garbage"][0] == ModelKind.INVALID
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


# --- one bad entry fails only itself; nothing outside data/ is read -------------------------------

import sys  # noqa: E402
import threading  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from bench_assets.models.drop_folder import WatchState, decide  # noqa: E402

_OPENED: list[str] | None = None
_RECORDING = threading.local()


def _audit(event, args):
    if _OPENED is not None and event in ("open", "os.scandir", "os.listdir") and args and args[0] is not None:
        if isinstance(args[0], (str, bytes, os.PathLike)):
            _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only inside `opened_paths`


@contextmanager
def opened_paths():
    """Every path opened or listed (Python's audit events) while the block runs."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def _bad_entries(models, outside):
    """Each bad state on disk, with the file its message must name and what it must say."""
    os.symlink(models / "nowhere.safetensors", models / "dangling.safetensors")
    os.symlink(outside / "secret.safetensors", models / "outlink.safetensors")
    os.symlink(outside, models / "outdir")
    os.mkfifo(models / "fifo.safetensors")
    (models / "pipe").mkdir()
    (models / "pipe" / "model_index.json").write_text("{}")
    os.symlink(outside / "secret.safetensors", models / "pipe" / "unet.safetensors")
    _safetensors(models / "style.safetensors", b"\x00" * 16)
    (models / "nobase.yaml").write_text("{base: sd15.safetensors, lora: style.safetensors, scale: 0.8}\n")
    (models / "nolora.yaml").write_text("{base: good.safetensors, lora: gone.safetensors}\n")
    (models / "proc.yaml").write_text("{images: /proc/self}\n")
    (models / "etc.yaml").write_text(f"{{images: ../../{'../' * len(models.parts)}etc}}\n")
    (models / "noimages.yaml").write_text("{images: not-there}\n")
    (models / "fileimages.yaml").write_text("{images: good.safetensors}\n")
    os.symlink(outside / "card.yaml", models / "outcard.yaml")
    _safetensors(models / "sidecar.safetensors")
    (models / "sidecar.settings.yaml").write_text("steps: [\n")
    _safetensors(models / "badsetting.safetensors")
    (models / "badsetting.settings.yaml").write_text("stepz: 4\n")
    return {
        "dangling": ("dangling.safetensors", "dangling symlink"),
        "outlink": ("outlink.safetensors", "outside the data folder"),
        "outdir": ("outdir", "outside the data folder"),
        "fifo": ("fifo.safetensors", "not a regular file"),
        "pipe": ("pipe/unet.safetensors", "outside the data folder"),
        "nobase": ("nobase.yaml", "field 'base'"),
        "nolora": ("nolora.yaml", "field 'lora'"),
        "proc": ("proc.yaml", "field 'images': /proc/self resolves to"),
        "etc": ("etc.yaml", "outside the data folder"),
        "noimages": ("noimages.yaml", "is not a folder"),
        "fileimages": ("fileimages.yaml", "is not a folder"),
        "outcard": ("outcard.yaml", "outside the data folder"),
        "sidecar": ("sidecar.settings.yaml", "invalid YAML"),
        "badsetting": ("badsetting.settings.yaml", "unknown setting"),
    }


def test_each_bad_entry_fails_alone_and_nothing_outside_data_is_read(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    models = data / "models"
    models.mkdir(parents=True)
    outside.mkdir()
    _safetensors(outside / "secret.safetensors")  # a valid file: only the link's place makes it wrong
    (outside / "card.yaml").write_text("{repo: org/name}\n")
    _safetensors(models / "good.safetensors")
    expected = _bad_entries(models, outside)

    with opened_paths() as opened:
        entries = scan_models(models)
        decision = decide(entries, WatchState(), now=time.time() + 3600, cache_dir=data / ".cache")
    by_key = {e.key: e for e in entries}
    assert by_key["good"].error is None and by_key["good"].kind == ModelKind.SINGLE_FILE
    for key, (file, words) in expected.items():
        entry = by_key[key]
        assert entry.kind == ModelKind.INVALID, key
        assert str(models / file) in entry.error and words in entry.error, (key, entry.error)
    assert {launch.entry.key for launch in decision.launches} == set(by_key), "every entry gets its partitions"
    root = str(data.resolve())
    assert str(models / "good.safetensors") in opened, "the hook sees the reads the scan does make"
    assert [p for p in opened if not os.path.realpath(p).startswith(root)] == []


@pytest.mark.parametrize("name", ["new\nline", "tab\there\x07", "esc\x1b[31m", "bytes\udcff"])
def test_control_characters_get_a_working_key(tmp_path, name):
    path = tmp_path / "data" / "models" / f"{name}.safetensors"
    path.parent.mkdir(parents=True)
    _safetensors(path)
    (entry,) = scan_models(path.parent)
    assert entry.error is None and entry.path == path
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*-[0-9a-f]{6}", entry.key), entry.key
    assert len(fingerprint(entry)) == 64
