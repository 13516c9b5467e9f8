"""Model versions on a real warehouse and image folder (no Dagster: the storage layer alone)."""

from __future__ import annotations

import polars as pl
import pytest

from bench_assets.storage.versions import VERSIONS_TABLE, VersionError, VersionStore


def _fill(store: VersionStore, model: str, category: str, fingerprint: str, value: float) -> None:
    """What the images and a metric asset leave behind for one partition of one version."""
    manifest, scores = [], []
    for i in range(2):
        key = f"{model}/{category}/p{i}_i0_s0.png"
        store.images.put_bytes(key, f"{fingerprint}-{i}".encode())
        manifest.append({"model": model, "category": category, "prompt_id": f"p{i}", "image_index": 0,
                         "path": key, "model_fingerprint": fingerprint, "created_at": "2026-01-01T00:00:00"})
        scores.append({"model": model, "category": category, "prompt_id": f"p{i}", "image_index": 0,
                       "image_path": key, "value": value})
    store.warehouse.write_partition("images", model, category, manifest)
    store.warehouse.write_partition("scores_x", model, category, scores)


def test_a_new_fingerprint_archives_the_partition_and_keeps_every_version(tmp_path):
    store = VersionStore(tmp_path)
    assert store.before_generation("m", "cat", "a" * 64, "/models/m.safetensors").version == 1
    _fill(store, "m", "cat", "a" * 64, 1.0)
    _fill(store, "other", "cat", "c" * 64, 5.0)

    v2 = store.before_generation("m", "cat", "b" * 64, "/models/m.safetensors")
    assert (v2.version, v2.label) == (2, "m@2")
    # the current layout is empty for the new version, the old one is archived with its images
    assert store.warehouse.read_partition("scores_x", "m", "cat") is None
    assert store.images.keys("m/cat") == [] and not (tmp_path / "images" / "m" / "cat").exists()
    old = store.rows("scores_x", store.resolve("m@1"))
    assert old["value"].to_list() == [1.0, 1.0]
    for key in old["image_path"]:  # keys relative to the archive's image root
        assert key.startswith(f"m@{'a' * 16}/cat/")
        assert store.archive_images.get_bytes(key).startswith(b"a" * 64)
        assert (tmp_path / "versions" / "images" / key).is_file()
    # another model is untouched
    assert store.warehouse.read_partition("scores_x", "other", "cat")["value"].to_list() == [5.0, 5.0]

    _fill(store, "m", "cat", "b" * 64, 2.0)
    assert store.rows("scores_x", store.resolve("m"))["value"].to_list() == [2.0, 2.0]
    assert store.rows("scores_x", store.resolve("m@" + "b" * 6))["value"].to_list() == [2.0, 2.0]
    assert store.table().select("model", "version").rows() == [("m", 1), ("m", 2), ]
    assert store.warehouse.read_table(VERSIONS_TABLE).height == 2


def test_returning_to_an_archived_version_restores_it(tmp_path):
    store = VersionStore(tmp_path)
    store.before_generation("m", "cat", "a" * 64, "m")
    _fill(store, "m", "cat", "a" * 64, 1.0)
    store.before_generation("m", "cat", "b" * 64, "m")
    _fill(store, "m", "cat", "b" * 64, 2.0)
    back = store.before_generation("m", "cat", "a" * 64, "m")
    assert back.version == 1
    current = store.warehouse.read_partition("scores_x", "m", "cat")
    assert current["value"].to_list() == [1.0, 1.0]
    assert sorted(current["image_path"]) == ["m/cat/p0_i0_s0.png", "m/cat/p1_i0_s0.png"]
    assert all(store.images.get_bytes(k).startswith(b"a" * 64) for k in current["image_path"])
    assert store.rows("scores_x", store.resolve("m@2"))["value"].to_list() == [2.0, 2.0]


def test_prune_keeps_the_newest_versions_and_those_in_use(tmp_path):
    store = VersionStore(tmp_path)
    for i, fp in enumerate("abc"):
        store.before_generation("m", "cat", fp * 64, "m")
        _fill(store, "m", "cat", fp * 64, float(i))
    pruned = store.prune(keep=2)
    assert [v.label for v in pruned] == ["m@1"]
    assert [v.version for v in store.of("m")] == [2, 3]
    assert store.archive_images.keys(f"m@{'a' * 16}") == []
    assert len(store.archive_images.keys(f"m@{'b' * 16}/cat")) == 2
    assert store.rows("scores_x", store.resolve("m@2"))["value"].to_list() == [1.0, 1.0]
    assert store.prune(keep=1)[0].label == "m@2"
    assert store.rows("scores_x", store.resolve("m"))["value"].to_list() == [2.0, 2.0], "latest is never pruned"
    with pytest.raises(ValueError, match="at least 1"):
        store.prune(keep=0)


def test_unknown_references_say_what_exists(tmp_path):
    store = VersionStore(tmp_path)
    store.before_generation("m", "cat", "ab" + "0" * 62, "m")
    _fill(store, "m", "cat", "ab" + "0" * 62, 1.0)
    store.before_generation("m", "cat", "ac" + "0" * 62, "m")
    with pytest.raises(VersionError, match=r"'m@3' names no version; versions of 'm': m@1 \(ab0000"):
        store.resolve("m@3")
    with pytest.raises(VersionError, match="ambiguous"):
        store.resolve("m@a")
    with pytest.raises(VersionError, match="no results for model 'nope'; models: m"):
        store.resolve("nope")
