"""Model cards in the drop folder: parsing, validation, signatures, LoRA and pickle handling."""

from __future__ import annotations

import json
import os
import struct

import pytest
import yaml

from bench_assets.models.cards import CardError, cached_commit
from bench_assets.models.kinds import load_card
from bench_assets.models.registry import ModelKind, fingerprint, scan_models
from bench_assets.core.naming import ImageName, image_path

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def _safetensors(path, keys=("w",), payload=b"\x00" * 16):
    header = {k: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]} for k in keys}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + payload)
    return path


def _lora(path, payload=b"\x00" * 16):
    return _safetensors(path, ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",), payload)


def _card(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def _entries(models):
    return {e.key: e for e in scan_models(models)}


def _bump(path, ns):
    os.utime(path, ns=(ns, ns))


@pytest.fixture
def hf_cache(tmp_path_factory, monkeypatch):
    """A hub cache laid out like the real one, with refs/main -> COMMIT_A."""
    cache = tmp_path_factory.mktemp("hf-cache")
    repo = cache / "models--org--model"
    for commit in (COMMIT_A, COMMIT_B):
        (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT_A)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return repo


@pytest.mark.parametrize(
    "data, field",
    [
        ({"repo": "not a repo"}, "repo"),
        ({"repo": "org/a--b"}, "repo"),
        ({"repo": "org/model", "revison": "main"}, "revison"),
        ({"repo": "org/model", "dtype": "fp8"}, "dtype"),
        ({"repo": "org/model", "scheduler": "magic"}, "scheduler"),
        ({"repo": "org/model", "settings": {"steps": 0}}, "settings"),
        ({"repo": "org/model", "settings": {"stepz": 3}}, "settings.stepz"),
        ({"repo": "org/model", "settings": [1, 2]}, "settings"),
        ({"repo": "org/model", "dtype": "fp16", "settings": {"precision": "bf16"}}, "dtype"),
        ({"base": "org/model", "lora": "missing.safetensors"}, "lora"),
        ({"base": "org/model", "lora": "style.ckpt"}, "lora"),
        ({"base": "org/model", "lora": "style.safetensors", "scale": "high"}, "scale"),
        ({"base": "org/model"}, "lora"),
        ({"base": "local-name", "lora": "style.safetensors", "revision": "main"}, "revision"),
        ({"images": "no-such-folder"}, "images"),
        ({"images": "shots", "grid": [2]}, "grid"),
        ({"images": "shots", "grid": [0, 2]}, "grid"),
        ({"images": "shots", "extension": "gif"}, "extension"),
        ({"images": "shots", "dtype": "fp16"}, "dtype"),
        ({"checkpoint": "old.ckpt"}, "allow_pickle"),
        ({"checkpoint": "old.ckpt", "allow_pickle": "yes"}, "allow_pickle"),
        ({"checkpoint": "missing.ckpt", "allow_pickle": True}, "checkpoint"),
    ],
)
def test_bad_cards_name_the_file_and_the_field(tmp_path, data, field):
    _lora(tmp_path / "style.safetensors")
    (tmp_path / "style.ckpt").write_bytes(b"pickle")
    (tmp_path / "old.ckpt").write_bytes(b"pickle")
    (tmp_path / "shots").mkdir()
    card = _card(tmp_path / "broken.yaml", data)
    with pytest.raises(CardError) as info:
        load_card(card)
    message = str(info.value)
    assert message.startswith(f"{card}: "), message
    assert f"'{field}'" in message, message


@pytest.mark.parametrize("text", ["repo: [unclosed", "just a string", "{}", "repo: org/a\nimages: x\n"])
def test_unparseable_or_ambiguous_cards_are_invalid_entries_that_fail_alone(tmp_path, text):
    (tmp_path / "bad.yaml").write_text(text)
    _safetensors(tmp_path / "good.safetensors")
    entries = _entries(tmp_path)
    assert entries["bad"].kind == ModelKind.INVALID
    assert entries["bad"].error.startswith(f"{tmp_path / 'bad.yaml'}: ")
    assert entries["good"].kind == ModelKind.SINGLE_FILE and entries["good"].error is None


def test_hf_card_settings_merge_and_the_sidecar_wins(tmp_path, hf_cache):
    _card(tmp_path / "sdxl.yaml", {"repo": "org/model", "dtype": "fp16", "scheduler": "euler_a",
                                   "settings": {"steps": 25, "width": 768}})
    (entry,) = scan_models(tmp_path)
    assert entry.kind == ModelKind.HF_REPO and entry.card.source.repo == "org/model"
    assert entry.settings_overrides() == {"precision": "fp16", "sampler": "euler_a", "steps": 25, "width": 768}
    (tmp_path / "sdxl.settings.yaml").write_text("steps: 4\n")
    (entry,) = scan_models(tmp_path)
    assert entry.settings_overrides() == {"precision": "fp16", "sampler": "euler_a", "steps": 4, "width": 768}


def test_hf_fingerprint_follows_the_cached_commit_and_the_card(tmp_path, hf_cache):
    card = _card(tmp_path / "m.yaml", {"repo": "org/model"})
    (first,) = scan_models(tmp_path)
    assert cached_commit("org/model", None) == COMMIT_A
    fp_a = fingerprint(first, tmp_path / ".cache")

    (hf_cache / "refs" / "main").write_text(COMMIT_B)  # a newer snapshot was downloaded
    (second,) = scan_models(tmp_path)
    assert second.signature != first.signature
    assert fingerprint(second, tmp_path / ".cache") != fp_a

    _card(card, {"repo": "org/model", "revision": COMMIT_A})  # pinning the old commit brings it back
    (pinned,) = scan_models(tmp_path)
    assert pinned.signature != second.signature
    assert fingerprint(pinned) != fp_a  # the revision is part of the identity too
    _card(card, {"repo": "org/model", "variant": "fp16"})
    (variant,) = scan_models(tmp_path)
    assert fingerprint(variant) not in (fp_a, fingerprint(second))


def test_uncached_repo_is_still_an_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    _card(tmp_path / "m.yaml", {"repo": "org/never-downloaded"})
    (entry,) = scan_models(tmp_path)
    assert entry.kind == ModelKind.HF_REPO and entry.error is None
    assert "not-cached" in entry.signature


def test_lora_file_without_card_is_invalid_with_a_card_example(tmp_path):
    lora = _lora(tmp_path / "my-style.safetensors")
    peft_lora = _safetensors(tmp_path / "peft-style.safetensors", ("unet.mid_block.attn.to_q.lora_A.weight",))
    entries = _entries(tmp_path)
    for key, path in (("my-style", lora), ("peft-style", peft_lora)):
        assert entries[key].kind == ModelKind.INVALID
        message = entries[key].error
        assert message.startswith(str(path)) and "LoRA" in message
        assert f"lora: {path.name}" in message and "base:" in message and "scale:" in message
        assert "\n" not in message


def test_lora_card_claims_its_file_and_resolves_a_local_base(tmp_path):
    (tmp_path / "sd15").mkdir()
    (tmp_path / "sd15" / "model_index.json").write_text("{}")
    (tmp_path / "sd15.settings.yaml").write_text("width: 512\nheight: 512\n")
    _lora(tmp_path / "my-style.safetensors")
    _card(tmp_path / "sd15-style.yaml", {"base": "sd15", "lora": "my-style.safetensors", "scale": 0.8,
                                         "settings": {"steps": 12}})
    entries = _entries(tmp_path)
    assert set(entries) == {"sd15", "sd15-style"}  # the LoRA file is part of the card's entry
    lora = entries["sd15-style"]
    assert lora.kind == ModelKind.LORA and lora.error is None
    assert lora.base.key == "sd15" and lora.base.kind == ModelKind.DIFFUSERS
    assert lora.card.source.scale == 0.8
    assert lora.settings_overrides() == {"width": 512, "height": 512, "steps": 12}  # base's, then the card's
    assert tmp_path / "my-style.safetensors" in lora.dependencies()
    assert tmp_path / "sd15" in lora.dependencies()


def test_lora_base_can_be_a_repo_id_but_not_an_unknown_name(tmp_path, hf_cache):
    _lora(tmp_path / "style.safetensors")
    _card(tmp_path / "hub-style.yaml", {"base": "org/model", "lora": "style.safetensors", "revision": "main"})
    _card(tmp_path / "lost-style.yaml", {"base": "nowhere", "lora": "style.safetensors"})
    entries = _entries(tmp_path)
    hub = entries["hub-style"]
    assert hub.kind == ModelKind.LORA and hub.base.kind == ModelKind.HF_REPO
    assert hub.base.card.source.repo == "org/model" and hub.base.card.source.revision == "main"
    lost = entries["lost-style"]
    assert lost.kind == ModelKind.INVALID
    assert lost.error.startswith(str(tmp_path / "lost-style.yaml")) and "'base'" in lost.error


def test_lora_signature_and_fingerprint_follow_file_scale_and_base(tmp_path):
    base = _safetensors(tmp_path / "base.safetensors")
    lora = _lora(tmp_path / "style.safetensors")
    card = _card(tmp_path / "styled.yaml", {"base": "base.safetensors", "lora": "style.safetensors", "scale": 1.0})
    cache = tmp_path / ".cache"

    def current():
        entry = _entries(tmp_path)["styled"]
        return entry.signature, fingerprint(entry, cache)

    seen = [current()]
    _lora(lora, payload=b"\x01" * 16)
    _bump(lora, 10**9)
    seen.append(current())
    _card(card, {"base": "base.safetensors", "lora": "style.safetensors", "scale": 0.5})
    _bump(card, 2 * 10**9)
    seen.append(current())
    _safetensors(base, payload=b"\x02" * 16)
    _bump(base, 3 * 10**9)
    seen.append(current())
    assert len({sig for sig, _ in seen}) == 4
    assert len({fp for _, fp in seen}) == 4
    assert current() == seen[-1]  # stable when nothing changes


def test_image_folder_card_grid_sets_images_per_prompt_and_folder_is_claimed(tmp_path):
    shots = tmp_path / "api-shots"
    shots.mkdir()
    (shots / "p1.png").write_bytes(b"png")
    _card(tmp_path / "api.yaml", {"images": "api-shots", "grid": [2, 3]})
    entries = _entries(tmp_path)
    assert set(entries) == {"api"}  # the image folder is not a broken diffusers folder
    entry = entries["api"]
    assert entry.kind == ModelKind.IMAGE_FOLDER and entry.card.source.grid == (2, 3)
    assert entry.settings_overrides() == {"images_per_prompt": 6}
    _card(tmp_path / "api.yaml", {"images": "api-shots", "grid": [2, 3], "settings": {"images_per_prompt": 2}})
    assert _entries(tmp_path)["api"].settings_overrides() == {"images_per_prompt": 2}


def test_image_folder_signature_and_fingerprint_follow_files_and_grid(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    (shots / "p1.png").write_bytes(b"one")
    card = _card(tmp_path / "api.yaml", {"images": str(shots), "grid": [2, 2]})  # absolute path

    def current():
        entry = _entries(tmp_path)["api"]
        return entry.signature, fingerprint(entry)

    seen = [current()]
    (shots / "p2.png").write_bytes(b"two")
    seen.append(current())
    (shots / "p2.png").write_bytes(b"TWO")  # same size, new content
    _bump(shots / "p2.png", 5 * 10**9)
    seen.append(current())
    _card(card, {"images": str(shots), "grid": [1, 4]})
    _bump(card, 6 * 10**9)
    seen.append(current())
    assert len({sig for sig, _ in seen}) == 4
    assert len({fp for _, fp in seen}) == 4


def test_pickle_is_refused_by_default_and_allowed_by_a_card(tmp_path):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"pickle bytes")
    (entry,) = scan_models(tmp_path)
    assert entry.kind == ModelKind.INVALID
    assert entry.error.startswith(str(ckpt)) and "arbitrary code" in entry.error
    assert "allow_pickle: true" in entry.error and "checkpoint: old.ckpt" in entry.error

    _card(tmp_path / "old-trusted.yaml", {"checkpoint": "old.ckpt", "allow_pickle": False})
    (refused,) = scan_models(tmp_path)  # a broken card still claims its file: one error, not two
    assert refused.kind == ModelKind.INVALID and "'allow_pickle'" in refused.error

    _card(tmp_path / "old-trusted.yaml", {"checkpoint": "old.ckpt", "allow_pickle": True})
    (allowed,) = scan_models(tmp_path)
    assert allowed.key == "old-trusted" and allowed.kind == ModelKind.PICKLE_CHECKPOINT
    assert allowed.card.source.checkpoint == ckpt
    fp = fingerprint(allowed)
    ckpt.write_bytes(b"other bytes!")
    _bump(ckpt, 7 * 10**9)
    changed = _entries(tmp_path)["old-trusted"]
    assert changed.signature != allowed.signature and fingerprint(changed) != fp


@pytest.mark.parametrize("name", ["my model; rm -rf ~", "$(touch pwned)|a,b[1]", "x..%2F..%2Fetc", "a`id`&b"])
def test_card_names_with_path_or_shell_characters_get_safe_keys(tmp_path, hf_cache, name):
    models = tmp_path / "models"
    models.mkdir()
    _card(models / f"{name}.yaml", {"repo": "org/model"})
    (entry,) = scan_models(models)
    assert entry.kind == ModelKind.HF_REPO and entry.name == name
    assert not set(entry.key) & set("|,[]/\\ ;~$()`&%"), entry.key
    assert not entry.key.startswith(".") and ".." not in entry.key
    images = tmp_path / "images"
    target = image_path(images, entry.key, "object", ImageName("p1", 0, 0)).resolve()
    assert target.is_relative_to(images.resolve())
