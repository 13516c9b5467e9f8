"""The drop-folder sensor, evaluated against a real Dagster instance."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.headless import root_cause
from dagster_helpers import requested_partitions


def _age(path, seconds=3600):
    """Pretend the model was copied in a while ago (it has settled)."""
    past = time.time() - seconds
    targets = [path, *path.rglob("*")] if path.is_dir() else [path]
    for target in targets:
        os.utime(target, (past, past))


class Ticker:
    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None
        self.sensor = defs.resolve_sensor_def("model_drop_sensor")

    def tick(self):
        with dg.build_sensor_context(
            instance_ref=self.instance.get_ref(),  # as the daemon does
            cursor=self.cursor,
            resources=self.defs.resources,
            repository_def=self.defs.get_repository_def(),
        ) as ctx:
            result = self.sensor.evaluate_tick(ctx)
        for request in result.dynamic_partitions_requests or []:  # what the daemon does
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        return result


@pytest.fixture
def setup(data_dir, instance):
    for entry in (data_dir / "models").iterdir():
        _age(entry)
    defs = build_definitions(DataPaths(data_dir))
    return data_dir, instance, defs, Ticker(defs, instance)


def _models(result) -> list[str]:
    return sorted({r.tags["bench/model"] for r in result.run_requests})


def test_new_unchanged_modified_halfwritten_and_garbage(setup):
    data_dir, instance, defs, ticker = setup
    models = data_dir / "models"

    first = ticker.tick()
    assert _models(first) == ["tiny-a", "tiny-b"]
    assert sorted(instance.get_dynamic_partitions("model")) == ["tiny-a", "tiny-b"]
    assert len(first.run_requests) == 2, "one run per model"
    assert requested_partitions(first.run_requests) == ["colour|tiny-a", "colour|tiny-b", "object|tiny-a", "object|tiny-b"]

    assert ticker.tick().run_requests == [], "a tick with no change requests nothing"

    single = models / "tiny-b.safetensors"
    blob = bytearray(single.read_bytes())
    blob[-1] ^= 0xFF  # one weight byte changes
    single.write_bytes(bytes(blob))
    _age(single, 600)
    modified = ticker.tick()
    assert _models(modified) == ["tiny-b"]
    assert {r.tags["bench/reason"] for r in modified.run_requests} == {"changed"}
    assert not {r.run_key for r in modified.run_requests} & {r.run_key for r in first.run_requests}

    copying = models / "incoming.safetensors"
    copying.write_bytes(single.read_bytes()[: 1 << 20])  # half copied, fresh mtime
    assert ticker.tick().run_requests == []
    with copying.open("ab") as handle:
        handle.write(single.read_bytes()[1 << 20 :])
    assert ticker.tick().run_requests == [], "still changing since the last tick"
    settled = ticker.tick()
    assert _models(settled) == ["incoming"]

    garbage = models / "garbage.safetensors"
    garbage.write_bytes(os.urandom(4096))
    _age(garbage)
    broken = ticker.tick()  # the sensor does not crash on it
    assert _models(broken) == ["garbage"]
    request = broken.run_requests[0]
    result = defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=request.partition_key, instance=instance, tags=request.tags, raise_on_error=False
    )
    assert not result.success
    message = root_cause(result)
    assert str(garbage) in message and "safetensors" in message


def test_cursor_survives_across_ticks_as_json(setup):
    _, _, _, ticker = setup
    ticker.tick()
    assert '"tiny-a"' in ticker.cursor and "fingerprint" in ticker.cursor


def test_partitions_already_made_from_the_same_weights_are_not_relaunched(setup):
    """A second sensor (the daemon's, after `bench run` used its own cursor) skips done work."""
    data_dir, instance, defs, ticker = setup
    instance.add_dynamic_partitions("model", ["tiny-a"])
    job = defs.resolve_job_def("benchmark")
    from bench_assets.defs.partitions import partition_key

    assert job.execute_in_process(partition_key=partition_key("tiny-a", "object"), instance=instance).success
    first = Ticker(defs, instance).tick()
    assert requested_partitions(first.run_requests) == ["colour|tiny-a", "colour|tiny-b", "object|tiny-b"]


CONTROL_NAMES = ("new\nline", "tab\there\x07")


def _lora_file(path):
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"lora_unet_down_blocks_0.lora_down.weight": np.zeros((4, 4), dtype=np.float32)}, str(path))


def _break_the_drop_folder(data_dir):
    """Bad entries next to the good ones, as a user could leave them on disk."""
    import shutil

    models = data_dir / "models"
    os.symlink(models / "deleted.safetensors", models / "dangling.safetensors")
    os.symlink("/etc/passwd", models / "passwd.safetensors")
    _lora_file(models / "style.safetensors")
    (models / "nobase.yaml").write_text("{base: sd15.safetensors, lora: style.safetensors, scale: 0.8}\n")
    (models / "proc.yaml").write_text("{images: /proc/self}\n")
    for name in CONTROL_NAMES:  # copies of tiny-b whose names hold control characters
        (models / f"{name}.safetensors").write_bytes((models / "tiny-b.safetensors").read_bytes())
        (models / f"{name}.settings.yaml").write_text((models / "tiny-b.settings.yaml").read_text())
        shutil.copytree(models / "tiny-b.config", models / f"{name}.config")
    past = time.time() - 3600
    for entry in models.iterdir():
        os.utime(entry, (past, past), follow_symlinks=False)
    return {"dangling": models / "dangling.safetensors", "passwd": models / "passwd.safetensors",
            "nobase": models / "nobase.yaml", "proc": models / "proc.yaml"}


def test_bad_entries_fail_alone_through_sensor_runs_schedule_and_status(setup, capsys, monkeypatch, tmp_path):
    from bench_assets.cli import main
    from bench_assets.models.registry import scan_models
    from dagster_helpers import materialize
    from test_nightly_schedule import _evaluate

    data_dir, instance, defs, ticker = setup
    bad = _break_the_drop_folder(data_dir)
    keys = {e.name: e.key for e in scan_models(data_dir / "models")}

    tick = ticker.tick()  # the sensor does not crash, and every entry gets its runs
    assert set(_models(tick)) == {"tiny-a", "tiny-b", *bad, *(keys[n] for n in CONTROL_NAMES)}

    for key, path in bad.items():
        result = materialize(defs, instance, key, "object")
        assert not result.success
        assert f"{path}: " in root_cause(result), key
    # A good model still runs: here one whose file name holds a newline.
    assert materialize(defs, instance, keys[CONTROL_NAMES[0]], "object").success

    requested = _evaluate(defs, instance)  # the schedule evaluates past the bad entries
    assert "object|tiny-a" in requested and f"object|{keys[CONTROL_NAMES[0]]}" not in requested
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["status"]) == 0
    rows = {tuple(line.split()[:3]) for line in capsys.readouterr().out.splitlines()[2:]}
    assert {("dangling", "object", "failed"), ("proc", "object", "failed"), ("tiny-a", "object", "missing"),
            (keys[CONTROL_NAMES[0]], "object", "done")} <= rows


def _scale_data_dir(tmp_path, monkeypatch, models=2, prompts=20):
    """What `bench run` leaves for ``models`` × ``prompts`` × 4 images in 2 categories (the scale benchmark's
    own generator): every partition done, every image on disk as recorded."""
    from bench_assets.benchmarks.scale_data import ScaleSpec, build_data_dir

    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_PROMPT_SUITE", raising=False)
    data = tmp_path / "scale" / "data"
    data.mkdir(parents=True)
    build_data_dir(DataPaths(data), ScaleSpec(models, prompts, categories=2, metrics=1))
    return data


def _image_lookups(monkeypatch, images_root) -> list[str]:
    """Every image-store key whose size and mtime are looked up from now on (one `stat` each on a folder,
    one object of a listing on a bucket), whether asked for alone (`info`) or by listing (`walk`, which
    `infos` and the status's listing both use)."""
    from bench_assets.storage.store import LocalStore

    looked: list[str] = []
    info, walk = LocalStore.info, LocalStore.walk

    def counted_info(self, key):
        if self.root == images_root:
            looked.append(key)
        return info(self, key)

    def counted_walk(self, prefix=""):
        for found in walk(self, prefix):
            if self.root == images_root:
                looked.append(found[0])
            yield found

    monkeypatch.setattr(LocalStore, "info", counted_info)
    monkeypatch.setattr(LocalStore, "walk", counted_walk)
    return looked


def test_a_tick_looks_up_no_recorded_image_beyond_its_sweep_budget(tmp_path, instance, monkeypatch):
    """2 models × 20 prompts × 4 images: the tick before issue 21 stat'ed all 160 on every tick."""
    from bench_assets.defs.sensors import DISK_SWEEP_ENV

    data = _scale_data_dir(tmp_path, monkeypatch)
    ticker = Ticker(build_definitions(DataPaths(data)), instance)
    assert ticker.tick().run_requests == []  # registers both models: their images were made from these weights
    looked = _image_lookups(monkeypatch, (data / "images").absolute())
    monkeypatch.setenv(DISK_SWEEP_ENV, "0")
    assert ticker.tick().run_requests == [] and looked == [], "sweep off: the tick reads no image at all"

    monkeypatch.setenv(DISK_SWEEP_ENV, "50")  # partitions of 10 prompts × 4 images: two per tick
    folders = []
    for _ in range(3):
        looked.clear()
        assert ticker.tick().run_requests == []
        assert 0 < len(looked) <= 50 + 40, "the budget, overshot by at most one partition"
        assert len(looked) == len(set(looked)), "each image looked up once"
        folders.append({key.rsplit("/", 1)[0] for key in looked})
    assert folders[0].isdisjoint(folders[1]) and len(folders[0] | folders[1]) == 4, "a pass in two ticks"
    assert folders[2] == folders[0], "then the next pass starts over"


def test_a_changed_image_is_found_by_the_sweep_and_its_run_regenerates_and_rescores_it(setup):
    import hashlib

    import polars as pl

    from dagster_helpers import materialize

    data_dir, instance, defs, ticker = setup
    instance.add_dynamic_partitions("model", ["tiny-a"])
    assert materialize(defs, instance, "tiny-a", "object").success
    ticker.tick()  # launches what is missing; tiny-a/object was made from these weights
    assert ticker.tick().run_requests == [], "every recorded image as recorded: nothing to repair"
    paths = DataPaths(data_dir)
    victim = sorted((paths.images / "tiny-a" / "object").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:300])

    tick = ticker.tick()
    assert requested_partitions(tick.run_requests) == ["object|tiny-a"]
    request = tick.run_requests[0]
    assert request.tags["bench/reason"] == "files changed on disk"
    result = defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=request.partition_key, tags=request.tags, instance=instance)
    assert result.success
    sha = hashlib.sha256(victim.read_bytes()).hexdigest()
    assert victim.stat().st_size > 300, "regenerated whole"
    clip = pl.read_parquet(paths.warehouse / "scores_clip" / "tiny-a" / "object.parquet")
    assert clip.filter(pl.col("image_path") == f"tiny-a/object/{victim.name}")["image_sha256"].to_list() == [sha]
    assert ticker.tick().run_requests == [], "repaired: the next pass finds nothing"


def test_the_suite_is_parsed_again_only_when_its_file_changes(setup, monkeypatch):
    from bench_assets.defs.resources import BenchResource
    from bench_assets.defs.sensors import suite_categories

    data_dir, _, defs, ticker = setup
    parsed = []
    suite = BenchResource.suite
    monkeypatch.setattr(BenchResource, "suite", lambda self: parsed.append(1) or suite(self))
    bench = defs.resources["bench"]
    first = suite_categories(bench)
    ticker.tick()
    ticker.tick()
    assert suite_categories(bench) == first and len(parsed) == 1, "unchanged file: parsed once"
    assert "extra" not in first
    path = Path(bench.suite_path)
    path.write_text(path.read_text() + '{"id": "extra-1", "prompt": "a red cube", "category": "extra"}\n')
    assert set(suite_categories(bench)) == {*first, "extra"} and len(parsed) == 2, "edited: parsed again"


def test_a_prompt_edited_in_the_suite_reruns_its_category_for_every_model(setup):
    data_dir, _, _, ticker = setup
    assert _models(ticker.tick()) == ["tiny-a", "tiny-b"]  # registered; the suite as it is now is the baseline
    assert ticker.tick().run_requests == []
    suite = data_dir / "prompts" / "default.jsonl"
    lines = suite.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if '"category": "object"' in line)
    lines[edited] = lines[edited].replace('"prompt": "', '"prompt": "a bright ', 1)
    suite.write_text("\n".join(lines) + "\n")

    result = ticker.tick()
    assert _models(result) == ["tiny-a", "tiny-b"] and {r.tags["bench/reason"] for r in result.run_requests} == {
        "prompts edited"}
    assert requested_partitions(result.run_requests) == ["object|tiny-a", "object|tiny-b"], "its category only"
    assert ticker.tick().run_requests == [], "asked once"
