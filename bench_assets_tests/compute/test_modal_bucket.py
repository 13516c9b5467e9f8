"""The Modal backend with the image store in a bucket: containers write and read it directly.

``drive_generation``/``drive_scoring`` with ``_local_map`` are what the
``modal run`` entrypoint does, the container functions called with
``.local()`` (the same bodies an H100 container runs), against a real S3
server. What they return is the Pipes message the asset receives; the
payloads are what would travel to the containers. Neither may carry a PNG.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from bench_assets.compute import modal_app
from bench_assets.models.registry import find_model, fingerprint
from bench_assets.core.paths import DataPaths
from bench_assets.prompts.suites import load_suite
from bench_assets.core.settings import GenerationSettings
from bench_assets.storage.store import open_store, store_spec
from bench_assets.generation.runtime import RuntimeOptions
from bench_assets.metrics.base import ImageItem
from bench_assets_tests.conftest import TEST_SETTINGS
from bench_assets_tests.s3_server import BUCKET

PNG_SIGNATURE = b"\x89PNG"


def _carries_png(value) -> bool:
    """Whether any bytes (or a PNG smuggled into a string) sit anywhere inside ``value``."""
    if isinstance(value, (bytes, bytearray)):
        return True
    if isinstance(value, str):
        return "IEND" in value or "\\x89PNG" in value
    if isinstance(value, dict):
        return any(_carries_png(k) or _carries_png(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(_carries_png(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_carries_png(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "store")
    return False


class Recorded:
    """``_local_map`` (the container bodies via ``.local()``), keeping every payload and result."""

    def __init__(self):
        self.payloads, self.results = [], []

    def __call__(self, function, payloads):
        self.payloads += payloads
        for result in modal_app._local_map(function, payloads):
            self.results.append(result)
            yield result


def test_containers_write_and_read_the_bucket_and_send_back_only_rows(data_dir, s3_env):
    images = open_store(f"s3://{BUCKET}/modal-{uuid.uuid4().hex[:8]}/images")
    paths = DataPaths(data_dir)
    entry = find_model(paths.models, "tiny-a")
    prompts = load_suite(paths.default_suite()).in_category("object")
    settings = GenerationSettings(**TEST_SETTINGS)
    extras = {"op": "generate", "data_dir": str(data_dir), "model": "tiny-a",
              "model_fingerprint": fingerprint(entry, paths.cache), "category": "object",
              "prompts": [dataclasses.asdict(p) for p in prompts], "settings": settings.as_dict(),
              "runtime": RuntimeOptions().as_dict(), "images": store_spec(images), "known": []}
    generation = Recorded()
    message = modal_app.drive_generation(extras, generation, False, lambda _: None)

    keys = images.keys()
    assert keys == sorted(f"tiny-a/object/{p.id}_i{k}_s{k}.png" for p in prompts for k in range(2))
    assert not (data_dir / "images").exists(), "nothing came through the launching machine's disk"
    assert all(result["png"] == {} for result in generation.results)
    assert not _carries_png(message) and not _carries_png(generation.payloads)
    rows = message["report"]["written"]
    assert sorted(r["path"] for r in rows) == keys and message["report"]["generated"] == 4
    for row in rows:  # the rows the container made describe the objects it wrote
        info = images.info(row["path"])
        assert (row["size"], row["mtime_ns"], row["etag"]) == (info.size, info.mtime_ns, info.etag)
    json.dumps(message)  # what Pipes sends: plain JSON

    again = modal_app.drive_generation({**extras, "known": rows}, Recorded(), False, lambda _: None)
    assert (again["report"]["generated"], again["report"]["present_before"]) == (0, 4), "known rows count as present"

    items = [ImageItem("tiny-a", "object", next(p for p in prompts if p.id == r["prompt_id"]), r["image_index"],
                       r["seed"], r["path"], r["sha256"], images).as_json() for r in rows]
    scoring = Recorded()
    scores = modal_app.drive_scoring(
        {"op": "score", "metric": "clip_score", "options": _clip_options(data_dir), "items": items,
         "images": store_spec(images), "existing": []}, scoring, lambda _: None)
    assert scores["computed"] == 4
    assert sorted(r["image_path"] for r in scores["rows"]) == keys, "score rows record the keys"
    assert all(r["value"] is not None for r in scores["rows"])
    assert all(payload["png"] == {} for payload in scoring.payloads), "the container read the bucket itself"
    assert not _carries_png(scoring.payloads) and not _carries_png(scores)


def _clip_options(data_dir) -> dict:
    import yaml

    return dict(yaml.safe_load((data_dir / "config.yaml").read_text())["metrics"].get("clip_score", {}))


@pytest.mark.parametrize("configured, already, expected", [
    ("", "", None),
    ("bench-bucket", "", {"BENCH_MODAL_SECRETS": "bench-bucket"}),
    ("bench-bucket", "hf-token", {"BENCH_MODAL_SECRETS": "hf-token,bench-bucket"}),
])
def test_the_bucket_secret_reaches_the_containers_by_name(configured, already, expected, monkeypatch):
    from bench_assets.compute.modal_auth import secrets_env

    monkeypatch.setenv("BENCH_MODAL_SECRETS", already)
    assert secrets_env(configured) == expected
