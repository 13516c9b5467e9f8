"""One real small benchmark run shared by every arena test (built once per session).

Two tiny models × one category × two prompts × four images (64 px, 2
steps), materialized in process by the same ``benchmark`` job the sensor
launches, with a real Dagster instance, and scored by one per-image metric
(clip_score): 8 pairs to vote on. Two partition runs only, to keep the
arena tests fast. Tests never vote into it:
``fresh_root`` gives each test its own data directory with a copy of the
images and the warehouse (rows hold image keys, so the copy resolves in its
own ``images/``) and no votes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

MODELS = ("tiny-a", "tiny-b")
CATEGORIES = ("object",)
IMAGES_PER_PROMPT = 4
SCORED = ("images", "clip_score")


@dataclass(frozen=True)
class SmallRun:
    data: Path

    def fresh_root(self, tmp: Path) -> Path:
        root = tmp / "arena-data"
        root.mkdir(parents=True)
        shutil.copytree(self.data / "warehouse", root / "warehouse")
        shutil.copytree(self.data / "images", root / "images")
        shutil.copytree(self.data / "prompts", root / "prompts")
        shutil.copy2(self.data / "config.yaml", root / "config.yaml")
        (root / "models").mkdir()
        return root


@pytest.fixture(scope="session")
def arena_run(tmp_path_factory, tiny_sources) -> SmallRun:
    import dagster as dg

    from bench_assets_tests.conftest import TEST_SETTINGS, make_data_dir
    from bench_assets.core.paths import DataPaths
    from bench_assets.defs.partitions import MODEL_DIM, partition_key
    from bench_assets.definitions import build_definitions

    data = make_data_dir(tmp_path_factory.mktemp("arena_run"), tiny_sources, MODELS)
    for model in MODELS:
        settings = {**TEST_SETTINGS, "images_per_prompt": IMAGES_PER_PROMPT}
        (data / "models" / f"{model}.settings.yaml").write_text(yaml.safe_dump(settings))
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test() as instance:
        env.setenv("BENCH_DATA_DIR", str(data))
        env.delenv("BENCH_CONFIG", raising=False)
        env.delenv("BENCH_PROMPT_SUITE", raising=False)
        defs = build_definitions(DataPaths(data))
        instance.add_dynamic_partitions(MODEL_DIM, list(MODELS))
        job = defs.resolve_job_def("benchmark")
        for model in MODELS:
            for category in CATEGORIES:
                result = job.execute_in_process(partition_key=partition_key(model, category), instance=instance,
                                                asset_selection=[dg.AssetKey(a) for a in SCORED])
                assert result.success, (model, category)
    return SmallRun(data)
