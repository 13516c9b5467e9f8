"""``MODEL_KINDS``: every decision by kind reads the table, so a card kind added as one row just works."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench_assets.models.cards import CardError, named_path
from bench_assets.models.kinds import MODEL_KINDS, CardFormat, KindRow, ModelKind, load_card, model_kind
from bench_assets.models.registry import fingerprint, scan_models


@dataclass(frozen=True)
class RemoteWeights:
    weights: Path


def _parse(card: Path, data: dict[str, Any]) -> RemoteWeights:
    paths = named_path(card, data, "remote_weights")
    if not paths or not paths[0].is_file():
        raise CardError(f"{card}: field 'remote_weights': no such file")
    return RemoteWeights(paths[0])


def _references(card: Path, data: dict[str, Any]) -> list[Path]:
    return named_path(card, data, "remote_weights")


REMOTE = KindRow(
    card=CardFormat("remote_weights", "'remote_weights' (test)", _parse, references=_references),
    fingerprint=lambda entry, _other: hashlib.sha256(entry.card.source.weights.read_bytes()).hexdigest(),
    load=None,
)


def test_a_card_kind_added_as_one_row_is_parsed_claims_its_file_and_is_fingerprinted(tmp_path, monkeypatch):
    monkeypatch.setitem(MODEL_KINDS, "remote", REMOTE)
    (tmp_path / "w.pt").write_bytes(b"weights")  # a pickle name: refused on its own, unless a card claims it
    (tmp_path / "remote.yaml").write_text(yaml.safe_dump({"remote_weights": "w.pt"}))
    (tmp_path / "stray.pt").write_bytes(b"other")
    entries = {e.key: e for e in scan_models(tmp_path)}
    assert sorted(entries) == ["remote", "stray"]
    assert (entries["remote"].kind, entries["remote"].error) == ("remote", None)
    assert entries["stray"].kind == ModelKind.INVALID and "pickle" in entries["stray"].error
    assert entries["remote"].dependencies() == [tmp_path / "w.pt"]
    assert fingerprint(entries["remote"]) == hashlib.sha256(b"weights").hexdigest()


def test_the_one_key_rule_names_every_card_kind_of_the_table(tmp_path, monkeypatch):
    monkeypatch.setitem(MODEL_KINDS, "remote", REMOTE)
    card = tmp_path / "both.yaml"
    card.write_text(yaml.safe_dump({"repo": "org/model", "remote_weights": "w.pt"}))
    with pytest.raises(CardError) as info:
        load_card(card)
    message = str(info.value)
    assert "'images' (image folder), 'checkpoint' (pickle opt-in) or 'remote_weights' (test)" in message
    assert "found ['repo', 'remote_weights']" in message


def test_an_unknown_kind_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown model kind 'nope'.*'single_file'"):
        model_kind("nope")


def test_only_models_that_generate_may_carry_a_lora():
    carriers = {name for name, row in MODEL_KINDS.items() if row.lora_base}
    assert carriers == {ModelKind.DIFFUSERS, ModelKind.SINGLE_FILE, ModelKind.HF_REPO, ModelKind.PICKLE_CHECKPOINT}
    assert all(MODEL_KINDS[name].loads_pipeline for name in carriers)
