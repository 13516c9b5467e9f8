"""The store seam: a local folder and an S3 bucket (a real moto server) behave the same way."""

from __future__ import annotations

import pytest

from bench_assets.core.config import BenchConfig
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import StoreError, clean_key
from bench_assets.storage.store import FsspecStore, LocalStore, configured_store, open_store
from bench_assets_tests.s3_server import local_or_s3_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    return local_or_s3_store(request, tmp_path / "root")


def test_round_trip_listing_move_and_delete(store):
    store.put_bytes("m/c/a.png", b"first")
    store.put_bytes("m/c/a.png", b"second")  # replaced, not appended or duplicated
    store.put_bytes("m/d/b.png", b"x" * 10)
    assert store.get_bytes("m/c/a.png") == b"second"
    assert store.info("m/c/a.png").size == 6 and store.info("m/c/a.png").mtime_ns > 0
    assert store.info("m/c/missing.png") is None
    assert store.keys("m") == ["m/c/a.png", "m/d/b.png"]
    assert store.keys("nothing/here") == []
    store.move("m/c/a.png", "archive/a.png")
    assert store.keys() == ["archive/a.png", "m/d/b.png"]
    with pytest.raises(FileNotFoundError):
        store.move("m/c/a.png", "archive/again.png")
    store.delete("m/d/b.png")
    store.delete("m/d/b.png")  # deleting twice is not an error
    assert store.keys() == ["archive/a.png"]


def test_child_store_addresses_the_same_objects(store):
    images = store.child("images")
    images.put_bytes("m/c/a.png", b"png")
    assert store.get_bytes("images/m/c/a.png") == b"png"
    assert images.keys() == ["m/c/a.png"]
    assert images.location("m/c/a.png") == store.location("images/m/c/a.png")


def test_check_passes_on_a_writable_root(store):
    assert store.check() is None
    assert store.keys() == []  # the probe object is gone


def test_keys_cannot_leave_the_root(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(StoreError, match=r"\.\."):
        store.put_bytes("../escape.png", b"x")
    assert clean_key("/a//b/./c.png") == "a/b/c.png"


def test_unreachable_bucket_is_one_line_without_the_secret(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-very-secret")
    store = open_store("s3://no-such-bucket-here/prefix")
    problem = store.check()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("s3://no-such-bucket-here/prefix: not writable")
    assert "hunter2" not in problem


def test_root_comes_from_env_then_config_then_data_dir(tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    monkeypatch.delenv("BENCH_STORAGE_ROOT", raising=False)
    assert isinstance(configured_store(paths, BenchConfig()), LocalStore)
    assert configured_store(paths, BenchConfig()).url == str(paths.root)
    in_config = BenchConfig(storage={"root": str(tmp_path / "elsewhere")})
    assert configured_store(paths, in_config).url == str(tmp_path / "elsewhere")
    monkeypatch.setenv("BENCH_STORAGE_ROOT", "memory://bench/team")
    chosen = configured_store(paths, in_config)
    assert isinstance(chosen, FsspecStore) and chosen.url == "memory://bench/team"


def test_credentials_are_refused_in_config(tmp_path):
    with pytest.raises(StoreError, match="credentials come from the environment"):
        open_store("s3://bucket/prefix", {"secret": "abc"})
