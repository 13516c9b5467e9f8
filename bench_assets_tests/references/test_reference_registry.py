"""Reference sets: folders and cards read, broken images reported and left out, captions made a prompt suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bench_assets.prompts.prompt import load_jsonl_suite
from bench_assets.references.captions import captions_suite, suite_jsonl
from bench_assets.references.registry import load_reference_set, scan_reference_sets
from bench_assets.references.sets import ReferenceSetError
from bench_assets.storage.store import LocalStore


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)


@pytest.fixture
def references(tmp_path) -> Path:
    root = tmp_path / "references"
    for index in range(4):
        _png(root / "shapes" / f"img_{index}.png", (index * 60, 10, 10))
    broken = root / "shapes" / "broken.png"
    broken.write_bytes((root / "shapes" / "img_0.png").read_bytes()[:40])  # a truncated PNG
    (root / "shapes" / "captions.jsonl").write_text(
        "".join(json.dumps({"file": f"img_{i}.png", "caption": f"a red square number {i}"}) + "\n" for i in range(3)))
    return root


def test_folder_set_leaves_out_a_broken_image_by_name_and_reads_captions(references):
    ref = load_reference_set(references, "shapes")
    assert sorted(image.name for image in ref.images) == [f"img_{i}.png" for i in range(4)]
    assert len(ref.problems) == 1 and ref.problems[0].startswith("broken.png: unreadable image")
    assert ref.captions == {f"img_{i}.png": f"a red square number {i}" for i in range(3)}
    assert ref.load(ref.images[1]).getpixel((0, 0)) == (60, 10, 10)


def test_fingerprint_follows_content_not_names(references):
    before = load_reference_set(references, "shapes").fingerprint
    (references / "shapes" / "img_3.png").rename(references / "shapes" / "renamed.png")
    assert load_reference_set(references, "shapes").fingerprint == before
    _png(references / "shapes" / "img_0.png", (1, 2, 3))
    assert load_reference_set(references, "shapes").fingerprint != before


def test_cards_folder_store_prefix_and_hf_dataset(references, tmp_path):
    (references / "via-folder.yaml").write_text(yaml.safe_dump({"folder": "shapes"}))
    bucket = tmp_path / "bucket"
    _png(bucket / "refs" / "coco" / "a.png", (5, 5, 5))
    _png(bucket / "refs" / "coco" / "b.png", (9, 9, 9))
    (references / "via-store.yaml").write_text(yaml.safe_dump({"store_prefix": "refs/coco"}))
    (references / "via-hf.yaml").write_text(yaml.safe_dump({"hf_dataset": "nobody/nothing", "split": "val"}))
    (references / "two-keys.yaml").write_text(yaml.safe_dump({"folder": "shapes", "store_prefix": "x"}))
    found, broken = scan_reference_sets(references, open_prefix=LocalStore(bucket).child, cache=tmp_path / "cache")
    assert found["via-folder"].fingerprint == found["shapes"].fingerprint
    assert sorted(image.name for image in found["via-store"].images) == ["a.png", "b.png"]
    assert "via-hf.yaml" in broken["via-hf"] and "datasets" in broken["via-hf"]  # not installed here, or offline
    assert "exactly one of" in broken["two-keys"]


def test_coco_captions_become_a_prompt_suite(references, tmp_path):
    (references / "shapes" / "captions.jsonl").unlink()
    coco = {"images": [{"id": 7, "file_name": "img_1.png"}, {"id": 8, "file_name": "img_2.png"}],
            "annotations": [{"image_id": 7, "caption": "first"}, {"image_id": 7, "caption": "second"},
                            {"image_id": 8, "caption": "a dog"}]}
    (references / "shapes" / "captions.json").write_text(json.dumps(coco))
    prompts = captions_suite(load_reference_set(references, "shapes"))
    suite_file = tmp_path / "shapes.jsonl"
    suite_file.write_text(suite_jsonl(prompts))
    suite = load_jsonl_suite(suite_file)
    assert [(p.id, p.category, p.prompt) for p in suite.prompts] == [("img_1", "shapes", "first"),
                                                                     ("img_2", "shapes", "a dog")]
    assert suite.prompts[0].metadata["reference_file"] == "img_1.png"
    (references / "shapes" / "captions.json").unlink()
    with pytest.raises(ReferenceSetError, match="no captions"):
        captions_suite(load_reference_set(references, "shapes"))


def test_bench_references_lists_sets_and_writes_the_captions_suite(references, monkeypatch, capsys):
    from bench_assets.cli import main

    data = references.parent
    (data / "prompts").mkdir()
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    assert main(["references"]) == 0
    assert "shapes: 4 images, 3 captions, 1 left out" in capsys.readouterr().out
    assert main(["references", "suite", "shapes"]) == 0
    assert len(load_jsonl_suite(data / "prompts" / "shapes.jsonl").prompts) == 3


def test_a_later_process_reads_only_new_or_changed_images(references, monkeypatch):
    from bench_assets.references import registry

    first = load_reference_set(references, "shapes")
    monkeypatch.setattr(registry, "_CHECKED", {})  # a new process: nothing checked in memory
    reads = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real_read_bytes(self))
    again = load_reference_set(references, "shapes")
    assert again.fingerprint == first.fingerprint and again.problems == first.problems
    assert not [name for name in reads if name.endswith(".png")], "every image's check came from the cache file"
    _png(references / "shapes" / "img_2.png", (7, 7, 7))
    reads.clear()
    assert load_reference_set(references, "shapes").fingerprint != first.fingerprint
    assert [name for name in reads if name.endswith(".png")] == ["img_2.png"], "the changed image alone is read"
