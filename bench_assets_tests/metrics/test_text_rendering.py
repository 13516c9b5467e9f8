"""TextRendering: OneIG-Bench's definitions re-derived independently, and the real OCR on real PNGs.

The OCR models (RapidOCR's PP-OCRv4, bundled in the rapidocr wheel) are the
real ones: no tiny stand-in, nothing downloaded. Text is rendered with PIL's
built-in font.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.judges import tiny_text_options
from bench_assets.metrics import text_rendering as tr
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.text_rendering import TextRendering

LONG_TARGET = (
    "Renewable energy adoption is accelerating across cities, driven by cheaper solar panels and wind turbines"
)
HELLO = Prompt(id="txt-hello", category="text", prompt='a sign that says "HELLO WORLD"', metadata={"text": "HELLO WORLD"})
DINER = Prompt(id="txt-diner", category="text", prompt="a diner sign", metadata={"text": ["LATE NIGHT", "DINER"]})
BLANK_SHORT = Prompt(id="txt-short", category="text", prompt="a sign", metadata={"text": "HELLO WORLD"})
BLANK_LONG = Prompt(id="txt-long", category="text", prompt="a slide", metadata={"text": LONG_TARGET})
NO_TEXT = Prompt(id="obj-001", category="object", prompt="a red bicycle", metadata={"objects": [{"name": "bicycle"}]})
PUNCT_ONLY = Prompt(id="txt-punct", category="text", prompt="a sign", metadata={"text": "!?"})


# --------------------------------------------------------------------------- independent reference


def ref_normalize(s: str) -> str:
    """OneIG's preprocess_string, re-derived character by character (no regular expressions)."""
    accented = set("àâäéèêëîïôöùûüçÀÂÄÉÈÊËÎÏÔÖÙÛÜÇ")

    def wanted(c: str) -> bool:
        return ("\u4e00" <= c <= "\u9fa5") or (c.isascii() and c.isalnum()) or c in accented

    cleaned = "".join(c for c in s if wanted(c) or c.isspace())
    if any("\u4e00" <= c <= "\u9fff" for c in cleaned):
        return "".join(c for c in s if wanted(c))
    return " ".join(cleaned.split())


def ref_levenshtein(a: str, b: str) -> int:
    """Full DP matrix, as OneIG's levenshtein_distance."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


def ref_matches(gt: str, ocr: str) -> tuple[int, int]:
    """Greedy one-to-one matching of units (words, or characters for Chinese) of gt in ocr."""
    chinese = any("\u4e00" <= c <= "\u9fff" for c in gt)
    gt_units = list(gt) if chinese else gt.split()
    pool = list(ocr) if chinese else ocr.split()
    matched = 0
    for unit in gt_units:
        if unit in pool:
            pool.remove(unit)
            matched += 1
    return matched, len(gt_units)


def ref_columns(ocr_text: str, target: str) -> dict:
    gt, ocr = ref_normalize(target), ref_normalize(ocr_text)
    ed = ref_levenshtein(ocr, gt)
    cr = 1.0 if ed == 0 else 0.0
    matched, total = ref_matches(gt, ocr)
    wac = matched / total if total else 0.0
    max_ed = 50 if any("\u4e00" <= c <= "\u9fff" for c in gt) else 100
    return {"edit_distance": ed, "completion_rate": cr, "word_accuracy": wac, "matched_words": matched,
            "target_words": total, "text_score": 1 - min(max_ed, ed) * (1 - cr) * (1 - wac) / max_ed,
            "value": 1 - ed / max(len(gt), len(ocr), 1)}


PAIRS = [
    # (OCR reading, target)
    ("HELLO WORLD", "HELLO WORLD"),
    ("HELLOWORLD", "HELLO WORLD"),
    ("Hello, World!", "hello world"),  # OneIG keeps case: two substitutions
    ("  GOOD\nMORNING  ", "GOOD MORNING"),
    ("the the cat", "the cat sat on the mat"),
    ("Café crème", "Cafe creme"),
    ("", "OPEN"),
    ("SOUP SOUP SOUP", "SOUP"),
    ("生日快乐 30", "生日快乐30！"),
    ("生日 快 乐", "生日快乐"),
    ("快乐快乐", "生日快乐"),
    ("x" * 150, "OPEN"),  # edit distance beyond MAX_ED
    ("5G networks, 2025.", "['The Impact of 5G Technology', 'Telecom Industry Report, 2025']"),
]


@pytest.mark.parametrize("ocr_text,target", PAIRS)
def test_definitions_match_independent_reference(ocr_text: str, target: str) -> None:
    ours = tr.compare_text(ocr_text, target)
    expected = ref_columns(ocr_text, target)
    assert tr.normalize_text(target) == ref_normalize(target)
    assert tr.normalize_text(ocr_text) == ref_normalize(ocr_text)
    assert tr.levenshtein(tr.normalize_text(ocr_text), tr.normalize_text(target)) == expected["edit_distance"]
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert ours["ocr_text"] == ocr_text and ours["target_text"] == target


def test_hand_worked_values() -> None:
    """A few values worked out by hand from OneIG's definitions."""
    assert tr.normalize_text("  Hello,   World! ") == "Hello World"
    assert tr.normalize_text("生日 快乐, 30!") == "生日快乐30"
    assert tr.levenshtein("kitten", "sitting") == 3
    row = tr.compare_text("Hello, World!", "hello world")
    assert (row["edit_distance"], row["completion_rate"], row["word_accuracy"]) == (2, 0.0, 0.0)
    assert row["text_score"] == pytest.approx(0.98)
    assert row["value"] == pytest.approx(1 - 2 / 11)
    row = tr.compare_text("the the cat", "the cat sat on the mat")
    assert (row["matched_words"], row["target_words"]) == (3, 6)  # "the" twice, "cat" once
    row = tr.compare_text("生日 快 乐", "生日快乐")
    assert (row["language"], row["edit_distance"], row["completion_rate"], row["max_edit_distance"]) == ("zh", 0, 1.0, 50)
    assert tr.compare_text("", "OPEN")["text_score"] == pytest.approx(1 - 4 / 100)
    assert tr.compare_text("", "OPEN")["value"] == 0.0


def test_text_score_formula() -> None:
    assert tr.text_score(0.0, 1.0, 1.0, "en") == 1.0
    assert tr.text_score(10.0, 0.2, 0.5, "en") == pytest.approx(1 - 10 * 0.8 * 0.5 / 100)
    assert tr.text_score(10.0, 0.2, 0.5, "zh") == pytest.approx(1 - 10 * 0.8 * 0.5 / 50)
    assert tr.text_score(250.0, 0.0, 0.0, "en") == 0.0  # ED clamped at MAX_ED
    assert tr.text_score(80.0, 0.0, 0.0, "zh") == 0.0
    with pytest.raises(ValueError, match="language"):
        tr.text_score(1.0, 0.0, 0.0, "fr")


# --------------------------------------------------------------------------- model-level aggregate


def _synthetic_rows() -> list[dict]:
    pairs = [
        ("m1", "HELLO WORLD", "HELLO WORLD"),
        ("m1", "HELLOWORLD", "HELLO WORLD"),
        ("m1", "", "GOOD MORNING"),
        ("m1", "the cat", "the cat sat on the mat"),
        ("m1", "生日快", "生日快乐"),
        ("m2", "OPEN", "OPEN"),
        ("m2", "0PEN", "OPEN"),
        ("m2", "SLOW DOWN", "SLOW DOWN NOW"),
    ]
    return [{"model": m, "prompt_id": f"p{i}", **tr.compare_text(o, t)} for i, (m, o, t) in enumerate(pairs)]


def _oneig_model_score(rows: list[dict]) -> float:
    """OneIG's text_score.py: ED, CR means; WAC = sum(matches)/sum(gt words); per language, image-weighted."""
    total, images = 0.0, 0
    for language in ("en", "zh"):
        mine = [r for r in rows if r["language"] == language]
        if not mine:
            continue
        ed = sum(r["edit_distance"] for r in mine) / len(mine)
        cr = sum(r["completion_rate"] for r in mine) / len(mine)
        wac = sum(r["matched_words"] for r in mine) / sum(r["target_words"] for r in mine)
        max_ed = 100 if language == "en" else 50
        total += len(mine) * (1 - min(max_ed, ed) * (1 - cr) * (1 - wac) / max_ed)
        images += len(mine)
    return total / images


def test_combine_is_oneig_model_level_score() -> None:
    import numpy as np
    import polars as pl

    rows = _synthetic_rows()
    frame = pl.DataFrame(rows)
    summary = TextRendering.summary_columns()
    for model in ("m1", "m2"):
        mine = frame.filter(pl.col("model") == model)
        sums = mine.select(*[expr.cast(pl.Float64).sum().alias(name) for name, expr in summary.items()])
        totals = {name: np.array([sums[name][0]]) for name in summary}
        expected = _oneig_model_score([r for r in rows if r["model"] == model])
        assert float(TextRendering.combine(totals)[0]) == pytest.approx(expected, abs=1e-12)
    # English only: the same as text_score() on the means.
    en = [r for r in rows if r["model"] == "m1" and r["language"] == "en"]
    ed = sum(r["edit_distance"] for r in en) / len(en)
    cr = sum(r["completion_rate"] for r in en) / len(en)
    wac = sum(r["matched_words"] for r in en) / sum(r["target_words"] for r in en)
    assert _oneig_model_score(en) == pytest.approx(tr.text_score(ed, cr, wac, "en"), abs=1e-12)
    # Vectorised over resamples; an empty resample gives NaN (the bootstrap drops it).
    zeros = {name: np.zeros(2) for name in summary}
    assert np.isnan(TextRendering.combine(zeros)).all()


def test_docstring_sql_recomputes_text_score() -> None:
    """The SQL in the module docstring runs on a scores_text table and gives text_score per language."""
    import duckdb
    import polars as pl

    sql = re.search(r"(SELECT .*?;)", tr.__doc__, re.S).group(1)
    rows = _synthetic_rows()
    scores_text = pl.DataFrame(rows)  # noqa: F841  (read by DuckDB by name)
    result = duckdb.sql(sql).fetchall()
    assert len(result) == 3  # (m1, en), (m2, en), (m1, zh)
    for model, language, ed, cr, wac, score in result:
        mine = [r for r in rows if r["model"] == model and r["language"] == language]
        assert score == pytest.approx(_oneig_model_score(mine), abs=1e-12)
        assert score == pytest.approx(tr.text_score(ed, cr, wac, language), abs=1e-12)


# --------------------------------------------------------------------------- real OCR on real images


def _render(path: Path, lines: list[tuple[tuple[int, int], str]], size: tuple[int, int], font_size: int) -> Path:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    for xy, text in lines:
        draw.text(xy, text, fill="black", font=font)
    image.save(path)
    return path


def _item(prompt: Prompt, path: Path, index: int = 0) -> ImageItem:
    return ImageItem("tiny", prompt.category, prompt, index, index, path, f"sha-{prompt.id}-{index}")


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("text_images")
    hello = _render(folder / "hello.png", [((10, 20), "HELLO WORLD")], (320, 96), 40)
    diner = _render(folder / "diner.png", [((10, 10), "LATE"), ((200, 10), "NIGHT"), ((10, 90), "DINER")], (320, 160), 32)
    blank = _render(folder / "blank.png", [], (128, 128), 10)
    return [
        _item(HELLO, hello),
        _item(NO_TEXT, hello),
        _item(BLANK_SHORT, blank),
        _item(DINER, diner),
        _item(PUNCT_ONLY, hello),
        _item(BLANK_LONG, blank, index=1),
    ]


@pytest.fixture(scope="module")
def metric() -> TextRendering:
    metric = TextRendering(tiny_text_options())
    metric.load("cpu")
    return metric


@pytest.fixture(scope="module")
def rows(metric: TextRendering, items: list[ImageItem]) -> dict[str, dict]:
    out = metric.score(items)
    assert [(r["prompt_id"], r["image_index"]) for r in out] == [
        ("txt-hello", 0), ("txt-short", 0), ("txt-diner", 0), ("txt-long", 1)
    ]
    return {r["prompt_id"]: r for r in out}


def test_options_and_skips() -> None:
    assert TextRendering.default_options == {"engine": "rapidocr", "batch_size": 16}
    assert (TextRendering.name, TextRendering.table, TextRendering.unit) == ("text_rendering", "scores_text", "image")
    with pytest.raises(ValueError, match="engine"):
        TextRendering({"engine": "qwen-vl"})
    with pytest.raises(ValueError, match="unknown option"):
        TextRendering({"engin": "rapidocr"})
    with pytest.raises(RuntimeError, match="load"):
        TextRendering().score([])
    metric = TextRendering()
    assert metric.applies_to(HELLO) and metric.applies_to(DINER)
    assert not metric.applies_to(NO_TEXT)  # no target text: skipped, not scored as zero
    assert not metric.applies_to(PUNCT_ONLY)  # nothing left after normalisation
    assert not metric.applies_to(Prompt(id="e", category="text", prompt="x", metadata={"text": ""}))


def test_rendered_text_scores_high(rows: dict[str, dict]) -> None:
    row = rows["txt-hello"]
    assert row["value"] >= 0.9
    assert "HELLO" in row["ocr_text"] and row["target_text"] == "HELLO WORLD" and row["language"] == "en"
    assert row == {"prompt_id": "txt-hello", "image_index": 0, **tr.compare_text(row["ocr_text"], "HELLO WORLD")}


def test_lines_are_joined_in_reading_order(rows: dict[str, dict]) -> None:
    row = rows["txt-diner"]
    assert row["ocr_text"] == "LATE NIGHT DINER"
    assert row["target_text"] == "LATE NIGHT DINER"  # a list target is joined with spaces
    assert (row["edit_distance"], row["completion_rate"], row["value"]) == (0, 1.0, 1.0)


def test_blank_image(rows: dict[str, dict]) -> None:
    """No text read: ED = target length, CR = WAC = 0, so the text accuracy is 0. OneIG's
    formula (MAX_ED 100) makes that 0.89 for an 11-character target, 0 for 100+ characters."""
    short, long = rows["txt-short"], rows["txt-long"]
    for row in (short, long):
        assert row["ocr_text"] == "" and row["completion_rate"] == 0.0 and row["word_accuracy"] == 0.0
    assert short["edit_distance"] == len("HELLO WORLD")
    assert short["value"] <= 0.1 and long["value"] <= 0.1
    assert short["text_score"] == pytest.approx(1 - 11 / 100)
    assert long["edit_distance"] == len(LONG_TARGET.replace(",", "")) > 100  # the comma is normalised away
    assert long["text_score"] <= 0.1
    assert all(0.0 <= r["value"] <= 1.0 and math.isfinite(r["value"]) for r in rows.values())


def test_one_image_per_call_gives_the_same_rows(metric: TextRendering, items: list[ImageItem], rows: dict) -> None:
    one_by_one = TextRendering({"batch_size": 1})
    one_by_one._engine = metric._engine  # same engine: the OCR itself is deterministic
    out = one_by_one.score([items[0], items[1], items[2]])
    assert [r["prompt_id"] for r in out] == ["txt-hello", "txt-short"]
    for row in out:
        assert row == rows[row["prompt_id"]]


def test_module_import_is_cheap() -> None:
    code = (
        "import sys, bench_assets.metrics.text_rendering, bench_assets.metrics.aesthetic, "
        "bench_assets.metrics.preference, bench_assets.metrics.tiny.judges; "
        "heavy = sorted(m for m in ('torch', 'open_clip', 'transformers', 'rapidocr_onnxruntime', 'onnxruntime', "
        "'cv2') if m in sys.modules); assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_oneig_zh_set_uses_max_ed_50_for_every_target(metric: TextRendering, items: list[ImageItem]) -> None:
    """OneIG's ZH mode: MAX_ED = 50 for the whole set, English targets (brand names) included."""
    import numpy as np
    import polars as pl

    zh_brand = Prompt(id="zh-brand", category="text_rendering", prompt="品牌“TechNova”",
                      metadata={"text": ["TechNova"], "text_language": "zh"})
    zh_title = Prompt(id="zh-title", category="text_rendering", prompt="标题“心理健康意识”",
                      metadata={"text": ["心理健康意识"], "text_language": "zh"})
    en_brand = Prompt(id="en-brand", category="text_rendering", prompt='logo "TechNova"', metadata={"text": "TechNova"})
    blank = items[2].key
    rows = metric.score([_item(zh_brand, blank), _item(zh_title, blank), _item(en_brand, blank)])
    brand, title, english = rows
    assert (brand["language"], brand["max_edit_distance"]) == ("zh", 50)
    assert (english["language"], english["max_edit_distance"]) == ("en", 100)
    # Per image: OneIG's formula with 50 on this image's ED, CR, WAC (nothing read: ED = 8, CR = 0, WAC = 0).
    assert brand["edit_distance"] == 8 and brand["completion_rate"] == 0.0 and brand["word_accuracy"] == 0.0
    assert brand["text_score"] == pytest.approx(1 - min(50, 8) * (1 - 0) * (1 - 0) / 50)
    assert english["text_score"] == pytest.approx(1 - 8 / 100)
    # Model level over the ZH set: one MAX_ED of 50 on the set's means, as text_score.py in ZH mode.
    zh_rows = [brand, title]
    ed = sum(r["edit_distance"] for r in zh_rows) / 2
    cr = sum(r["completion_rate"] for r in zh_rows) / 2
    wac = sum(r["matched_words"] for r in zh_rows) / sum(r["target_words"] for r in zh_rows)
    expected = 1 - min(50, ed) * (1 - cr) * (1 - wac) / 50
    frame = pl.DataFrame(zh_rows)
    summary = TextRendering.summary_columns()
    sums = frame.select(*[expr.cast(pl.Float64).sum().alias(name) for name, expr in summary.items()])
    totals = {name: np.array([sums[name][0]]) for name in summary}
    assert float(TextRendering.combine(totals)[0]) == pytest.approx(expected, abs=1e-12)
    assert tr.language_set_of(Prompt(id="x", category="t", prompt="x", metadata={"text_language": "fr"}), "生日") == "zh"
