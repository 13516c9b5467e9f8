"""``storage.status_cache``: `bench status` judges again exactly the partitions whose inputs changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from bench_assets.benchmarks.scale_data import ScaleSpec, build_data_dir
from bench_assets.core.paths import DataPaths
from bench_assets.models.registry import scan_models
from bench_assets.storage import status_cache
from bench_assets.storage.status import PartitionStatus, StatusInputs, suite_statuses
from bench_assets.storage.warehouse import Warehouse

SPEC = ScaleSpec(models=2, prompts=6, images_per_prompt=2, categories=3)


@pytest.fixture
def done_dir(tmp_path, monkeypatch) -> DataPaths:
    """Every partition done (the scale benchmark's writer); its files are trusted at once (no racy window:
    they were all written a moment before the first status)."""
    monkeypatch.setattr(status_cache, "RACY_NS", 0)
    paths = DataPaths(tmp_path / "data")
    build_data_dir(paths, SPEC)
    return paths


class Reads:
    """Every Parquet file the judging reads: a warehouse key read on its own, or a file in a scan."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[str] = []
        read, scan = Warehouse._read, pl.scan_parquet

        def counted_read(warehouse, key):
            self.files.append(key)
            return read(warehouse, key)

        def counted_scan(source, *args, **kwargs):
            self.files.extend("/".join(Path(p).parts[-3:]) for p in (source if isinstance(source, list) else [source]))
            return scan(source, *args, **kwargs)

        monkeypatch.setattr(Warehouse, "_read", counted_read)
        monkeypatch.setattr(pl, "scan_parquet", counted_scan)

    def partitions(self) -> set[tuple[str, str]]:
        """(model, category) of every partition file read."""
        return {(key.split("/")[1], key.split("/")[2].removesuffix(".parquet")) for key in self.files}


def _statuses(paths: DataPaths, verify: bool = False) -> list[PartitionStatus]:
    inputs = StatusInputs.from_data_dir(paths)
    return [s for _entry, rows in suite_statuses(inputs, scan_models(paths.models), verify=verify) for s in rows]


def _by_partition(statuses: list[PartitionStatus]) -> dict[tuple[str, str], PartitionStatus]:
    return {(s.model, s.category): s for s in statuses}


def test_a_second_status_over_unchanged_data_reads_no_parquet_file(done_dir, monkeypatch):
    first = _statuses(done_dir)
    assert {s.state for s in first} == {"done"} and len(first) == 2 * 3
    reads = Reads(monkeypatch)
    assert _statuses(done_dir) == first
    assert _statuses(done_dir, verify=True) == first
    assert all(key.startswith("images/") for key in reads.files), "verify reads manifests, never a score file"
    reads.files.clear()
    assert _statuses(done_dir) == first
    assert reads.files == []


def test_a_changed_score_partition_is_judged_again_alone(done_dir, monkeypatch):
    before = _by_partition(_statuses(done_dir))
    warehouse = Warehouse(done_dir.warehouse)
    scores = warehouse.read_partition("scores_clip", "model-001", "colour")
    warehouse.write_partition("scores_clip", "model-001", "colour", scores.head(1))
    reads = Reads(monkeypatch)
    after = _by_partition(_statuses(done_dir))
    assert reads.partitions() == {("model-001", "colour")}
    assert after[("model-001", "colour")].state == "partial"
    assert after[("model-001", "colour")].metrics["clip_score"] == "partial"
    assert {k: v for k, v in after.items() if k != ("model-001", "colour")} == {
        k: v for k, v in before.items() if k != ("model-001", "colour")}


def test_an_edited_prompt_judges_its_category_again_in_every_model(done_dir, monkeypatch):
    _statuses(done_dir)
    suite_file = done_dir.prompts / "default.jsonl"
    records = [json.loads(line) for line in suite_file.read_text().splitlines()]
    edited = next(r for r in records if r["category"] == "object")
    edited["prompt"] += ", at night"
    suite_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    reads = Reads(monkeypatch)
    after = _by_partition(_statuses(done_dir))
    assert reads.partitions() == {("model-000", "object"), ("model-001", "object")}
    assert {k: s.state for k, s in after.items()} == {
        (m, c): "stale" if c == "object" else "done" for m in ("model-000", "model-001")
        for c in ("object", "colour", "counting")}


def test_a_new_metric_version_judges_every_partition_again(done_dir, monkeypatch):
    _statuses(done_dir)
    metric = StatusInputs.from_data_dir(done_dir).metrics[0]
    monkeypatch.setattr(type(metric), "version", metric.version + "-next")
    reads = Reads(monkeypatch)
    after = _statuses(done_dir)
    assert len(reads.partitions()) == 6
    assert {s.metrics[metric.name] for s in after} == {"partial"} and {s.state for s in after} == {"partial"}


def test_a_damaged_or_deleted_partition_file_is_noticed(done_dir, monkeypatch):
    _statuses(done_dir)
    damaged = Warehouse(done_dir.warehouse).partition_file("scores_clip", "model-000", "counting")
    damaged.write_bytes(damaged.read_bytes()[:100])
    Warehouse(done_dir.warehouse).partition_file("images", "model-001", "object").unlink()
    after = _by_partition(_statuses(done_dir))
    assert after[("model-000", "counting")].metrics["clip_score"] == "missing"
    assert damaged.with_name(damaged.name + ".corrupt").exists()
    assert after[("model-001", "object")].state == "missing"
    assert sum(s.state == "done" for s in after.values()) == 4


def _image(paths: DataPaths, model: str, category: str) -> Path:
    return sorted((paths.images / model / category).glob("*.png"))[0]


def test_a_deleted_or_added_image_is_noticed_without_verify(done_dir, monkeypatch):
    _statuses(done_dir)
    _image(done_dir, "model-000", "object").unlink()
    after = _by_partition(_statuses(done_dir))
    assert after[("model-000", "object")].state == "stale" and "missing on disk" in after[("model-000", "object")].error
    assert sum(s.state == "done" for s in after.values()) == 5

    (done_dir.images / "model-001" / "counting" / "stray.png").write_bytes(b"not recorded")
    reads = Reads(monkeypatch)
    again = _by_partition(_statuses(done_dir))
    assert reads.partitions() == {("model-001", "counting")}, "the stale one's folder did not change since"
    assert again == after, "an extra file changes no verdict, but it is looked at"


def test_an_image_rewritten_in_place_is_noticed_by_verify_only(done_dir):
    victim = _image(done_dir, "model-001", "counting")
    recorded = victim.stat()
    content = victim.read_bytes()
    victim.unlink()  # its own inode (the writer hard-links one file into every model), dated as recorded
    victim.write_bytes(content)
    os.utime(victim, ns=(recorded.st_atime_ns, recorded.st_mtime_ns))
    assert {s.state for s in _statuses(done_dir)} == {"done"}

    with victim.open("r+b") as file:  # same folder entries: the folder's mtime does not move
        file.write(b"\0" * 8)
    assert _by_partition(_statuses(done_dir))[("model-001", "counting")].state == "done", "not looked at (documented)"
    verified = _by_partition(_statuses(done_dir, verify=True))
    assert verified[("model-001", "counting")].state == "stale" and "changed on disk" in verified[
        ("model-001", "counting")].error
    assert sum(s.state == "done" for s in verified.values()) == 5
    assert _by_partition(_statuses(done_dir))[("model-001", "counting")].state == "stale", "what verify found is kept"


def test_a_damaged_verdicts_file_or_an_unwritable_cache_folder_only_costs_speed(done_dir, monkeypatch):
    first = _statuses(done_dir)
    (done_dir.cache / status_cache.VERDICTS_FILE).write_text("{not json")
    reads = Reads(monkeypatch)
    assert _statuses(done_dir) == first
    assert len(reads.partitions()) == 6, "every partition judged again"
    reads.files.clear()
    assert _statuses(done_dir) == first and reads.files == [], "and kept again"

    (done_dir.cache / status_cache.VERDICTS_FILE).unlink()
    monkeypatch.setattr(status_cache.tempfile, "NamedTemporaryFile", _refused)
    assert _statuses(done_dir) == first
    assert not (done_dir.cache / status_cache.VERDICTS_FILE).exists()


def _refused(*_args, **_kwargs):
    raise PermissionError("read-only data directory")


def test_a_deleted_models_verdicts_leave_the_file(done_dir):
    """The file holds the data directory's partitions: a model whose folder and rows are gone loses its
    verdicts at the next call, the others keep theirs."""
    import shutil

    first = _statuses(done_dir)
    verdicts = done_dir.cache / status_cache.VERDICTS_FILE
    assert {name.split("/")[0] for name in json.loads(verdicts.read_text())["partitions"]} == {"model-000",
                                                                                               "model-001"}
    warehouse = Warehouse(done_dir.warehouse)
    for table in warehouse.tables():
        warehouse.delete_model(table, "model-001")
    for path in done_dir.models.iterdir():
        if path.name.startswith("model-001"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = _statuses(done_dir)
    assert again == [s for s in first if s.model == "model-000"]
    assert {name.split("/")[0] for name in json.loads(verdicts.read_text())["partitions"]} == {"model-000"}
