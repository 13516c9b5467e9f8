"""Each rule the CLI and the Dagster layer both apply lives in one place; these catch the two drifting.

Settings precedence (``models.registry.model_settings``), metric construction
(``metrics.registry``) and the gpu pool's size (``compute.backend``): the CLI
and the resources built by ``build_definitions`` must reach the same answer
from the same data directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench_assets.cli import main
from bench_assets.core.config import ConfigError, generation_defaults, load_config
from bench_assets.models.registry import scan_models
from bench_assets.core.paths import DataPaths
from bench_assets.prompts.suites import load_suite
from bench_assets.definitions import build_definitions
from bench_assets.metrics.registry import configured_metrics, get_metric, metric_options

REPO = Path(__file__).resolve().parents[1]


def _config(data_dir, **sections) -> None:
    path = data_dir / "config.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **sections}))


def _expected_images(status_out: str) -> dict[tuple[str, str], int]:
    """(model, category) -> expected images, from `bench status`'s "made/expected" column."""
    rows = [line.split() for line in status_out.splitlines()[2:] if line.strip()]
    return {(r[0], r[1]): int(r[3].split("/")[1]) for r in rows}


def test_status_and_the_assets_layer_settings_the_same_way(data_dir, monkeypatch, capsys):
    """Defaults < config.yaml < the suite's generation: < the model's sidecar, on both sides."""
    _config(data_dir, generation={"images_per_prompt": 3, "steps": 7})
    (data_dir / "prompts" / "layered.suite.yaml").write_text(
        yaml.safe_dump({"include": ["default.jsonl"], "generation": {"images_per_prompt": 5}}))
    (data_dir / "models" / "tiny-b.settings.yaml").unlink()  # tiny-b takes the suite's; tiny-a its sidecar's 2
    monkeypatch.setenv("BENCH_PROMPT_SUITE", "layered")
    paths = DataPaths(data_dir)

    assert main(["status"]) == 0
    expected = _expected_images(capsys.readouterr().out)
    generation = build_definitions(paths).resources["generation"]
    assert generation.defaults() == generation_defaults(load_config(paths))  # what `bench report` reads
    assert generation.defaults().steps == 7
    suite = load_suite(paths.default_suite())
    per_model = {}
    for entry in scan_models(paths.models):
        settings = generation.settings_for(entry, suite.generation)
        per_model[entry.key] = settings.images_per_prompt
        for category in suite.categories:
            assert expected[(entry.key, category)] == len(suite.in_category(category)) * settings.images_per_prompt
    assert per_model == {"tiny-a": 2, "tiny-b": 5}


def test_status_and_the_resources_build_metrics_from_one_checked_section(data_dir, monkeypatch, capsys):
    paths = DataPaths(data_dir)
    cli_side = configured_metrics(metric_options(load_config(paths)))
    dagster_side = build_definitions(paths).resources["scorers"].metrics()
    assert [(m.name, m.scorer_id) for m in cli_side] == [(m.name, m.scorer_id) for m in dagster_side]
    clip = next(m for m in dagster_side if m.name == "clip_score")
    assert clip.scorer_id != get_metric("clip_score").scorer_id, "the config's tiny scorer, not the default"

    _config(data_dir, metrics={"clip_scor": {}})
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{data_dir / 'config.yaml'}: section 'metrics': unknown metric 'clip_scor'" in err
    with pytest.raises(ConfigError, match="section 'metrics': unknown metric 'clip_scor'"):
        build_definitions(paths)


@pytest.mark.parametrize("chosen_by", ["config.yaml", "BENCH_COMPUTE"])
def test_instance_config_sizes_the_pool_for_the_backend_the_resource_uses(data_dir, tmp_path, monkeypatch, capsys,
                                                                          chosen_by):
    """The file says modal; BENCH_COMPUTE=local overrides it, for the pool as for the resource."""
    _config(data_dir, compute={"backend": "modal"})
    monkeypatch.setenv("BENCH_MODAL_MAX_CONTAINERS", "5")
    monkeypatch.setenv("BENCH_GPUS", "3")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    if chosen_by == "BENCH_COMPUTE":
        monkeypatch.setenv("BENCH_COMPUTE", "local")
    else:
        monkeypatch.delenv("BENCH_COMPUTE", raising=False)
    backend = build_definitions(DataPaths(data_dir)).resources["compute"].backend
    assert backend == {"config.yaml": "modal", "BENCH_COMPUTE": "local"}[chosen_by]

    assert main(["instance-config", "--template", str(REPO / "dagster.yaml")]) == 0
    slots = {"modal": 5, "local": 3}[backend]
    assert f"gpu pool limit {slots} (" in capsys.readouterr().out
    assert f"default_limit: {slots}\n" in (tmp_path / "home" / "dagster.yaml").read_text()
