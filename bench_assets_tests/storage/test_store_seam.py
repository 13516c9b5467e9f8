"""The store seam: a local folder and an S3 bucket (a real moto server) behave the same way."""

from __future__ import annotations

import duckdb
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


class TracedStore:
    """A new backend for the test, a class of its own (neither store's subclass): objects in an fsspec
    filesystem it wraps, and a record of every object it was asked to write."""

    written: list[str] = []

    def __init__(self, url: str, inner: FsspecStore | None = None) -> None:
        self.inner = inner if inner is not None else FsspecStore(url)
        self.url = self.inner.url

    def __getattr__(self, name: str):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes) -> None:
        TracedStore.written.append(self.location(key))
        self.inner.put_bytes(key, data)

    def child(self, prefix: str) -> "TracedStore":
        return TracedStore(self.url, self.inner.child(prefix))

    def check(self) -> str | None:
        return f"{self.url}: the traced backend says no"


def test_a_new_store_kind_is_one_row(tmp_path, monkeypatch):
    """One STORE_KINDS row (here: memory:// served by TracedStore) is all open_store, the warehouse,
    DuckDB's views and bench doctor's storage check need."""
    from bench_assets.storage.catalog import bind_views
    from bench_assets.storage.health import check_result_store
    from bench_assets.storage.store import STORE_KINDS, StoreKind, store_kind
    from bench_assets.storage.warehouse import Warehouse, open_warehouse

    root = f"memory://seam-{tmp_path.name}/team"
    assert type(open_store(root)) is FsspecStore  # before: the catch-all fsspec row
    row = StoreKind(lambda url, _options: TracedStore(url), schemes=frozenset({"memory"}),
                    check_hint="ask the traced backend")
    monkeypatch.setitem(STORE_KINDS, "traced", row)
    monkeypatch.setattr(TracedStore, "written", [])
    monkeypatch.setenv("BENCH_STORAGE_ROOT", root)
    paths = DataPaths(tmp_path / "data")

    wh = open_warehouse(paths, BenchConfig())
    assert isinstance(wh.store, TracedStore) and store_kind(wh.store.url) is row
    wh.write_partition("scores_x", "m1", "a", [{"model": "m1", "prompt_id": "p1", "value": 0.25}])
    wh.write_partition("scores_x", "m2", "a", [{"model": "m2", "prompt_id": "p1", "value": 0.75}])
    assert TracedStore.written == [f"{root}/warehouse/scores_x/m1/a.parquet", f"{root}/warehouse/scores_x/m2/a.parquet"]
    assert wh.read_table("scores_x").sort("model")["value"].to_list() == [0.25, 0.75]
    assert Warehouse(open_store(f"{root}/warehouse")).categories("scores_x", "m2") == ["a"]

    con = duckdb.connect()
    assert bind_views(con, wh) == ["scores_x"]
    assert con.execute('SELECT model, value FROM "scores_x" ORDER BY model').fetchall() == [("m1", 0.25), ("m2", 0.75)]

    assert check_result_store(paths) == f"{root}: the traced backend says no: ask the traced backend"
