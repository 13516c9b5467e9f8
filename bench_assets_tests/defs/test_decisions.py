"""Model versions, the comparisons asset and the regression gate against a real Dagster instance.

One tiny single-file model goes through three versions (issue 12, acceptance 2 and 3):
v1; v2 with its weights nudged (new bytes, images as good); v3 with its VAE
decoder's output layer zeroed, a collapsed fine-tune whose every seed gives
the same flat image, so MS-SSIM diversity (real maths, no learned weights)
drops on every prompt. Eight prompts is the fewest for which a sign-flip
test over prompts can reach p < 0.05 with room to spare (min p = 2/2^8).
"""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bench_assets import cli
from bench_assets.core.naming import recorded_image_key
from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.decisions import REGRESSION_CHECK
from bench_assets.defs.partitions import partition_key
from bench_assets.storage.versions import VersionStore
from bench_assets_tests.conftest import TEST_SETTINGS, make_data_dir
from dagster_helpers import query, refresh_leaderboard, register

MODEL, CATEGORY, PROMPTS = "tiny-b", "object", 8
SETTINGS = {**TEST_SETTINGS, "width": 32, "height": 32}  # 16 images per version: seconds on a CPU
SELECTION = [dg.AssetKey("images"), dg.AssetKey("msssim_diversity")]


@pytest.fixture
def data(tmp_path, tiny_sources, monkeypatch):
    data = make_data_dir(tmp_path, tiny_sources, models=(MODEL,))
    (data / "models" / f"{MODEL}.settings.yaml").write_text(yaml.safe_dump(SETTINGS))
    with (data / "prompts" / "default.jsonl").open("w") as handle:
        for i in range(PROMPTS):
            handle.write(json.dumps({"id": f"o{i}", "category": CATEGORY, "prompt": f"object number {i}"}) + "\n")
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_PROMPT_SUITE", raising=False)
    return data


def _rewrite_weights(path, change) -> None:
    """Save the checkpoint again with ``change(name, tensor)`` applied: new bytes, same format."""
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    save_file({name: change(name, tensor) for name, tensor in tensors.items()}, str(path), metadata=metadata)


def _nudge(name, tensor):
    if not tensor.is_floating_point() or tensor.numel() < 2:
        return tensor
    noise = torch.randn(tensor.shape, generator=torch.Generator().manual_seed(len(name)))
    return (tensor + 1e-3 * tensor.float().std() * noise).to(tensor.dtype)


def _collapse(name, tensor):
    return torch.zeros_like(tensor) if name == "first_stage_model.decoder.conv_out.weight" else tensor


def _materialize(defs, instance, refresh: bool = True):
    result = defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key(MODEL, CATEGORY), instance=instance, asset_selection=SELECTION)
    assert result.success
    if not refresh:
        return None
    refreshed = refresh_leaderboard(defs, instance)
    assert refreshed.success
    (check,) = [c for c in refreshed.get_asset_check_evaluations() if c.check_name == REGRESSION_CHECK]
    return check


def test_versions_are_kept_compared_and_gated(data, instance, capsys):
    defs = build_definitions(DataPaths(data))
    register(instance, MODEL)
    weights = data / "models" / f"{MODEL}.safetensors"
    _materialize(defs, instance, refresh=False)

    _rewrite_weights(weights, _nudge)
    check = _materialize(defs, instance)
    assert check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    store = VersionStore(data)
    assert store.table().select("model", "version").rows() == [(MODEL, 1), (MODEL, 2)]
    assert query(data, "select count(*) from model_versions") == [(2,)]
    for ref in ("tiny-b@1", "tiny-b@2"):
        images = store.rows("images", store.resolve(ref))
        scores = store.rows("scores_msssim", store.resolve(ref))
        assert (images.height, scores.height) == (2 * PROMPTS, PROMPTS), ref
        # rows of the current version are keyed in images/, an archived one's in versions/images/
        where = store.images if ref == "tiny-b@2" else store.archive_images
        assert all(where.get_bytes(recorded_image_key(p))[:8] == b"\x89PNG\r\n\x1a\n" for p in images["path"]), \
            "images moved with rows"
    assert len(set(store.rows("images", store.resolve("tiny-b@1"))["model_fingerprint"])
               | set(store.rows("images", store.resolve("tiny-b@2"))["model_fingerprint"])) == 2
    assert query(data, "select model, version from leaderboard where category = 'all'") == [(MODEL, 2)]

    assert cli.main(["compare", "tiny-b@1", "tiny-b@2"]) == 0
    out = capsys.readouterr().out
    assert "| msssim_diversity | all | tiny-b@1" in out and "sign-flip" in out
    assert cli.main(["gate", "--baseline", "tiny-b@1", "--candidate", "tiny-b@2"]) == 0
    assert "gate: PASS" in capsys.readouterr().out

    _rewrite_weights(weights, _collapse)
    check = _materialize(defs, instance)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "msssim_diversity: tiny-b@3 − tiny-b@2 = -" in check.description and "95% CI" in check.description
    assert cli.main(["gate", "--baseline", "tiny-b@2", "--candidate", "tiny-b@3",
                     "--metrics", "msssim_diversity"]) == 1
    out = capsys.readouterr().out
    assert "FAIL msssim_diversity" in out and "gate: FAIL" in out
    # v3 is the leaderboard's version now; v1 and v2 are still there to compare, until pruned
    assert query(data, "select version from leaderboard where category = 'all'") == [(3,)]
    assert cli.main(["prune", "--keep", "2"]) == 0
    assert [v.version for v in VersionStore(data).of(MODEL)] == [2, 3]
    assert cli.main(["gate", "--baseline", "tiny-b@1", "--candidate", "tiny-b@3"]) == 2
    assert "'tiny-b@1' names no version" in capsys.readouterr().err
