"""Generation settings: validation names the source, and the set fingerprint covers what changes pixels."""

from __future__ import annotations

import pytest

from bench_assets.core.settings import GenerationSettings, SettingsError, set_fingerprint


def test_prediction_type_is_a_setting_that_changes_the_set_only_when_given():
    base = GenerationSettings()
    v = base.with_overrides({"prediction_type": "v_prediction"}, source="m.settings.yaml")
    assert v.prediction_type == "v_prediction"
    assert set_fingerprint("abc", base, "fp16") != set_fingerprint("abc", v, "fp16")
    # unset: the fingerprint is what it was before the field existed
    assert set_fingerprint("abc", base, "fp16") == set_fingerprint("abc", GenerationSettings(prediction_type=None), "fp16")
    with pytest.raises(SettingsError, match=r"m.settings.yaml: .*prediction_type 'v'"):
        base.with_overrides({"prediction_type": "v"}, source="m.settings.yaml")


def test_hardware_needs_are_validated_and_not_part_of_the_set():
    base = GenerationSettings()
    two = base.with_overrides({"gpus": 2, "min_gpu_memory_gb": 40}, source="x")
    assert set_fingerprint("abc", base, "fp16") == set_fingerprint("abc", two, "fp16")
    with pytest.raises(SettingsError, match="gpus must be >= 1"):
        base.with_overrides({"gpus": 0}, source="x")
    with pytest.raises(SettingsError, match="min_gpu_memory_gb must be >= 0"):
        base.with_overrides({"min_gpu_memory_gb": -1}, source="x")
