"""``storage.status_cache``: `bench status` judges again exactly the partitions whose inputs changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from bench_assets.benchmarks.scale_data import ScaleSpec, build_data_dir
from bench_assets.core.paths import DataPaths
from bench_assets.models.registry import scan_models
from bench_assets.storage import status, status_cache
from bench_assets.storage.status import PartitionStatus, StatusInputs, keep_partition_verdicts, suite_statuses
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


def _verdict_files(paths: DataPaths) -> set[tuple[str, str]]:
    folder = paths.cache / status_cache.VERDICTS_FOLDER
    return {(path.parent.name, path.stem) for path in folder.glob("*/*.json")}


def test_a_damaged_verdict_file_or_an_unwritable_cache_folder_only_costs_speed(done_dir, monkeypatch):
    first = _statuses(done_dir)
    assert len(_verdict_files(done_dir)) == 6
    (done_dir.cache / status_cache.VERDICTS_FOLDER / "model-000" / "colour.json").write_text("{not json")
    reads = Reads(monkeypatch)
    assert _statuses(done_dir) == first
    assert reads.partitions() == {("model-000", "colour")}, "only the partition whose verdict is unreadable"
    reads.files.clear()
    assert _statuses(done_dir) == first and reads.files == [], "and kept again"

    shutil.rmtree(done_dir.cache / status_cache.VERDICTS_FOLDER)
    (done_dir.cache / status_cache.OLD_VERDICTS_FILE).write_text("{}")  # as an older version left it
    monkeypatch.setattr(status_cache, "replacing", _refused)
    unlink = Path.unlink
    monkeypatch.setattr(Path, "unlink", lambda path, *a, **k: _refused() if done_dir.cache in path.parents
                        else unlink(path, *a, **k))
    assert _statuses(done_dir) == first
    assert _verdict_files(done_dir) == set()


def _refused(*_args, **_kwargs):
    raise PermissionError("read-only data directory")


def test_a_deleted_models_verdicts_leave_the_cache(done_dir):
    """The cache holds the data directory's partitions: a model whose folder and rows are gone loses its
    verdicts at the next call, the others keep theirs."""
    first = _statuses(done_dir)
    assert {model for model, _ in _verdict_files(done_dir)} == {"model-000", "model-001"}
    warehouse = Warehouse(done_dir.warehouse)
    for table in warehouse.tables():
        warehouse.delete_model(table, "model-001")
    for path in done_dir.models.iterdir():
        if path.name.startswith("model-001"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = _statuses(done_dir)
    assert again == [s for s in first if s.model == "model-000"]
    assert {model for model, _ in _verdict_files(done_dir)} == {"model-000"}
    assert not (done_dir.cache / status_cache.VERDICTS_FOLDER / "model-001").exists()


def test_a_writer_keeps_its_partitions_verdict_for_the_next_status(done_dir, monkeypatch):
    """What a metric asset calls after writing its scores: only that partition's files are looked at (no
    listing of the warehouse), and the next status judges every partition but that one."""
    inputs = StatusInputs.from_data_dir(done_dir)
    entry = next(e for e in scan_models(done_dir.models) if e.key == "model-001")
    reads = Reads(monkeypatch)
    monkeypatch.setattr(status, "listed_files", _refused)
    kept = keep_partition_verdicts(inputs, entry, ["colour"])
    monkeypatch.undo()
    assert reads.partitions() == {("model-001", "colour")}
    assert _verdict_files(done_dir) == {("model-001", "colour")}

    reads = Reads(monkeypatch)
    after = _by_partition(_statuses(done_dir))
    assert len(reads.partitions()) == 5 and ("model-001", "colour") not in reads.partitions()
    assert after[("model-001", "colour")] == kept[0] and kept[0].state == "done"


def _age(paths: DataPaths, seconds: int = 60) -> None:
    """Date every image folder ``seconds`` back: images written long before their scores, as in a real run."""
    for folder in paths.images.glob("*/*/"):
        past = folder.stat().st_mtime_ns - seconds * 1_000_000_000
        os.utime(folder, ns=(past, past))


def _later(monkeypatch: pytest.MonkeyPatch, seconds: int = 60) -> None:
    """The clock ``seconds`` ahead: a later call, for which the files written now have settled."""
    now = status_cache.time.time_ns
    monkeypatch.setattr(status_cache.time, "time_ns", lambda: now() + seconds * 1_000_000_000)


def test_files_written_just_before_the_look_are_kept_by_their_bytes(tmp_path, monkeypatch):
    """Racy files (git's "racily clean" entries): a change within the clock tick of the look that judged a
    file leaves its size and mtime as they were, so a file that young is kept with the hash of its bytes, and
    a change the signature cannot show is still noticed. An image folder that young is not kept at all."""
    paths = DataPaths(tmp_path / "data")
    build_data_dir(paths, SPEC)
    first = _statuses(paths)
    assert {s.state for s in first} == {"done"} and _verdict_files(paths) == set(), "image folders too young"

    _age(paths)
    assert _statuses(paths) == first
    entry = json.loads((paths.cache / status_cache.VERDICTS_FOLDER / "model-001" / "colour.json").read_text())
    assert len(entry["racy"]) == 2 + len(SPEC.metric_names), "the manifest, the failures and every score file"
    reads = Reads(monkeypatch)
    assert _statuses(paths) == first and reads.files == [], "the bytes are as judged: nothing judged again"

    victim = Warehouse(paths.warehouse).partition_file("scores_clip", "model-001", "colour")
    before, content = victim.stat(), bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size; the mtime put back: only the bytes tell
    victim.write_bytes(bytes(content))
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert Warehouse(paths.warehouse).store.info("scores_clip/model-001/colour.parquet").size == before.st_size
    reads.files.clear()
    _statuses(paths)
    assert reads.partitions() == {("model-001", "colour")}, "judged again, from the bytes now there"


def test_a_racy_file_that_has_settled_is_no_longer_hashed(tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    build_data_dir(paths, SPEC)
    _age(paths)
    first = _statuses(paths)
    _later(monkeypatch)
    hashed: list[str] = []
    digest = status_cache._bytes_digest
    monkeypatch.setattr(status_cache, "_bytes_digest", lambda store, key: hashed.append(key) or digest(store, key))
    assert _statuses(paths) == first and len(hashed) == 6 * (2 + len(SPEC.metric_names)), "checked once more"
    entry = json.loads((paths.cache / status_cache.VERDICTS_FOLDER / "model-001" / "colour.json").read_text())
    assert entry["racy"] == {}
    hashed.clear()
    assert _statuses(paths) == first and hashed == []
