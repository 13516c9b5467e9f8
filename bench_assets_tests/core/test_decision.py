"""The ``leaderboard:`` section of data/config.yaml: weights, margins, alpha."""

from __future__ import annotations

import pytest
import yaml

from bench_assets.core.config import ConfigError, load_config
from bench_assets.core.decision import decision_config
from bench_assets.core.paths import DataPaths

METRICS = ("clip_score", "geneval", "aesthetic")


def _load(tmp_path, monkeypatch, section):
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"leaderboard": section} if section is not None else {}))
    return decision_config(load_config(DataPaths(tmp_path)), METRICS)


def test_defaults_weigh_every_metric_equally_with_no_margin(tmp_path, monkeypatch):
    decision = _load(tmp_path, monkeypatch, None)
    assert decision.weights == {name: 1.0 for name in METRICS}
    assert decision.margin("geneval") == 0.0 and decision.alpha == 0.05
    assert decision.reference is None


def test_a_reference_model_is_named(tmp_path, monkeypatch):
    assert _load(tmp_path, monkeypatch, {"reference": "sd15"}).reference == "sd15"


def test_listed_weights_replace_the_defaults(tmp_path, monkeypatch):
    decision = _load(tmp_path, monkeypatch, {"weights": {"clip_score": 2, "geneval": 0.5},
                                             "margins": {"clip_score": 0.5}, "alpha": 0.01})
    assert decision.weights == {"clip_score": 2.0, "geneval": 0.5}
    assert (decision.margin("clip_score"), decision.margin("aesthetic"), decision.alpha) == (0.5, 0.0, 0.01)


@pytest.mark.parametrize("section, message", [
    ({"weights": {"clip": 1}}, r"leaderboard.weights names unknown metric\(s\) \['clip'\]"),
    ({"margins": {"geneval": -1}}, r"leaderboard.margins.geneval must be a number >= 0"),
    ({"weights": {"geneval": 0}}, "every metric weight 0"),
    ({"alpha": 1.5}, "alpha must be between 0 and 1"),
    ({"weight": {}}, r"unknown key\(s\) \['weight'\]"),
    ({"reference": ["a", "b"]}, "leaderboard.reference must be a model name"),
])
def test_mistakes_name_the_file_and_the_field(tmp_path, monkeypatch, section, message):
    with pytest.raises(ConfigError, match=message) as error:
        _load(tmp_path, monkeypatch, section)
    assert str(tmp_path / "config.yaml") in str(error.value)
