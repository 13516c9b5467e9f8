"""Image -> prompt: the captioner and the tagger on the tiny random-weight scorers, and the merged proposal.

Random weights propose arbitrary words, so these tests check structure and
validity, never words: one proposal per image, a prompt line built from it
passes the suite file's validation, GenEval and TIFA apply to it when it has
objects, each proposer loads once, and the tagger's proposal is one its own
image passes under GenEval with the same detector and thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.geneval import COLORS, GenEval
from bench_assets.metrics.proposers.base import Proposal, ProposedObject
from bench_assets.metrics.proposers.captioner import usable_caption
from bench_assets.metrics.proposers.propose import PLACEHOLDER_TEXT, merge_proposal, objects_text, propose_prompts
from bench_assets.metrics.proposers.registry import PROPOSERS, configured_proposers, get_proposer
from bench_assets.metrics.registry import METRICS
from bench_assets.metrics.tifa import TifaScore
from bench_assets.prompts.prompt import Prompt, load_jsonl_suite

# Every box of the tiny OWLv2 scores above 0: with these, it always finds (some of) the vocabulary.
FIND_EVERYTHING = {"threshold": 0.0, "counting_threshold": 0.0, "vocabulary": ["cup", "dog"]}


@pytest.fixture(scope="module")
def metric_options(tiny_sources: Path) -> dict:
    """The tiny scorers' metric options, as ``data/config.yaml``'s ``metrics:`` holds them in the demo."""
    return json.loads((tiny_sources / "scorers.json").read_text())


@pytest.fixture(scope="module")
def proposers(metric_options: dict) -> dict:
    loaded = configured_proposers(metric_options)
    for proposer in loaded.values():
        assert proposer.ensure_loaded("cpu") is True
    return loaded


@pytest.fixture(scope="module")
def finder(metric_options: dict):
    tagger = get_proposer("tagger", {**PROPOSERS["tagger"].options_from_metrics(metric_options), **FIND_EVERYTHING})
    tagger.ensure_loaded("cpu")
    return tagger


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[tuple[Path, Image.Image]]:
    folder = tmp_path_factory.mktemp("uploads")
    made = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.effect_noise((80, 80), 60).convert("RGB"),
            Image.linear_gradient("L").resize((72, 72)).convert("RGBA")]
    out = []
    for n, image in enumerate(made):
        path = folder / f"upload-{n}.png"
        image.save(path)
        out.append((path, image))
    return out


def _as_prompt(proposal: Proposal, tmp_path: Path) -> Prompt:
    """The proposal saved as a prompt line and read back through the suite loader's validation."""
    suite = tmp_path / "proposed.jsonl"
    suite.write_text(json.dumps({"id": "proposed-1", "category": "uploads", **proposal.as_prompt_fields()}) + "\n")
    return load_jsonl_suite(suite).prompts[0]


def _check_structure(proposal: Proposal, proposers: dict) -> None:
    assert isinstance(proposal.text, str) and proposal.text.strip()
    assert proposal.text_source in ("caption", "objects", "none")
    assert proposal.scorer_ids == {name: p.scorer_id for name, p in proposers.items()}
    for obj in proposal.objects:
        assert isinstance(obj, ProposedObject) and obj.name.strip()
        assert isinstance(obj.count, int) and obj.count >= 1
        assert obj.color is None or obj.color in COLORS


def test_the_proposers_load_the_weights_their_metrics_are_configured_with(metric_options: dict, proposers) -> None:
    assert proposers["captioner"].options["model"] == metric_options["tifa"]["model"]
    for key in ("model", "clip_pretrained", "clip_config_file"):
        assert proposers["tagger"].options[key] == metric_options["geneval"][key]


def test_one_valid_proposal_per_image_and_one_load_per_proposer(proposers, images, tmp_path: Path) -> None:
    pictures = [image for _, image in images]
    first = propose_prompts(pictures, proposers["captioner"], proposers["tagger"])
    again = propose_prompts(pictures[::-1], proposers["captioner"], proposers["tagger"])
    assert len(first) == len(pictures)
    assert [p.as_json() for p in again[::-1]] == [p.as_json() for p in first]  # batched, deterministic, per image
    for proposal in first:
        _check_structure(proposal, proposers)
        prompt = _as_prompt(proposal, tmp_path)
        assert prompt.prompt == proposal.text
        assert GenEval().applies_to(prompt) == TifaScore().applies_to(prompt) == bool(proposal.objects)
    for proposer in proposers.values():
        assert proposer.ensure_loaded("cpu") is False
        assert proposer.loads == 1


def test_found_objects_make_a_geneval_and_tifa_prompt_its_image_passes(finder, metric_options, images, tmp_path) -> None:
    path, image = images[1]
    [objects] = finder.propose([image])
    assert objects and {obj.name for obj in objects} <= {"cup", "dog"}
    proposal = merge_proposal("", objects, {"tagger": finder.scorer_id})
    assert proposal.text_source == "objects" and proposal.text == objects_text(objects)
    prompt = _as_prompt(proposal, tmp_path)
    assert TifaScore().applies_to(prompt)
    judge = GenEval({**metric_options["geneval"], "threshold": 0.0, "counting_threshold": 0.0, "max_overlap": 0.5})
    assert judge.applies_to(prompt)
    judge.load("cpu")
    [row] = judge.score([ImageItem("upload", prompt.category, prompt, 0, 0, str(path), "sha")])
    assert row["value"] == 1.0, row["reason"]
    assert json.loads(row["detected"]) == {obj.name: obj.count for obj in objects}
    assert finder.loads == 1


def test_a_proposer_must_be_loaded_and_knows_its_options(metric_options) -> None:
    captioner = get_proposer("captioner", PROPOSERS["captioner"].options_from_metrics(metric_options))
    with pytest.raises(RuntimeError, match="ensure_loaded"):
        captioner.propose([Image.new("RGB", (8, 8))])
    with pytest.raises(ValueError, match="unknown option"):
        get_proposer("tagger", {"vocabluary": "coco80"})
    with pytest.raises(ValueError, match="unknown vocabulary"):
        get_proposer("tagger", {"vocabulary": "coco81"})
    with pytest.raises(KeyError, match="known proposers"):
        get_proposer("painter")
    assert get_proposer("tagger", {"vocabulary": ["cup"]}).scorer_id != get_proposer("tagger").scorer_id


def test_every_row_borrows_options_its_metric_and_itself_have() -> None:
    for name, cls in PROPOSERS.items():
        assert cls.name == name and cls.version and cls.tiny_scorer is not None
        metric = METRICS[cls.borrows_from]
        assert set(cls.borrowed_options) <= set(metric.default_options) & set(cls.default_options)
        assert cls.tiny_scorer == metric.tiny_scorer  # the demo builds its weights once, for both


def test_the_text_falls_back_to_the_objects_then_to_a_placeholder() -> None:
    objects = [ProposedObject("cup", 2, "red"), ProposedObject("dog")]
    assert objects_text(objects) == "two red cups and a dog"
    assert objects_text([ProposedObject("person", 3), ProposedObject("bus", 2), ProposedObject("orange", 1)]) \
        == "three people, two buses and an orange"
    assert objects_text([ProposedObject("traffic light", 4, "green")]) == "four green traffic lights"
    soup = "Is\ufffd o o o oangeigure\ufffd10 pink4"  # what the tiny VLM answers
    fallback = merge_proposal(soup, objects, {})
    assert (fallback.text, fallback.text_source, fallback.caption) == ("two red cups and a dog", "objects", soup)
    assert fallback.as_prompt_fields()["metadata"] == {
        "objects": [{"name": "cup", "count": 2, "colour": "red"}, {"name": "dog", "count": 1}]}
    nothing = merge_proposal("", [], {})
    assert (nothing.text, nothing.text_source, nothing.as_prompt_fields()["metadata"]) == (PLACEHOLDER_TEXT, "none", {})
    kept = merge_proposal('  "A dog on a red\n sofa."  ', objects, {})
    assert (kept.text, kept.text_source) == ("A dog on a red sofa.", "caption")


@pytest.mark.parametrize("answer", ["", "dog", "dog dog dog", "12 34 5!", "a\x13 dog", "Yes\ufffd right", "\ue184 cat"])
def test_an_answer_that_is_no_caption_is_not_used(answer: str) -> None:
    assert usable_caption(answer) == ""
