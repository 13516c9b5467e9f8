"""CLIP's real BPE tokenizer, rebuilt offline from the vocabulary open_clip ships.

The tiny Stable Diffusion pipelines (``bench_assets.demo.tiny_models``) and
the tiny scorers (OWLv2, the PickScore-shaped CLIP) need a CLIP tokenizer;
nothing here downloads or imports torch.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77
_MERGES_END = 49152 - 256 - 2 + 1  # OpenAI CLIP keeps this many lines of the BPE file


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest above 255.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def _open_clip_bpe_file() -> Path:
    # Found without importing open_clip (which pulls in torch, timm, ...).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip is not installed; it ships the CLIP BPE vocabulary")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def write_bpe_files(out_dir: Path) -> None:
    lines = gzip.open(_open_clip_bpe_file()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:_MERGES_END]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [t + "</w>" for t in alphabet] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )


def clip_tokenizer_files(out_dir: Path) -> Path:
    """Write a real CLIP tokenizer (``vocab.json``, ``merges.txt``, configs) to ``out_dir``.

    Rebuilt offline from the BPE list that open_clip ships, in the same order
    as OpenAI CLIP builds it, so token ids match the real SD 1.x tokenizer
    while nothing is downloaded.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_bpe_files(out_dir)
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH, "do_lower_case": True, **specials}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return out_dir
