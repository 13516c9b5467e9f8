"""Text rendering (OneIG-Bench style): is the text the prompt asks for written in the image?

The image is read by an OCR engine (RapidOCR 1.4.4, PP-OCRv4 detection and
recognition models that ship inside the ``rapidocr-onnxruntime`` wheel, so
this metric is real offline). The recognised lines are joined with spaces in
reading order (RapidOCR sorts its boxes top to bottom, then left to right) and
compared with the prompt's target text (metadata ``"text"``: a string, or a
list of strings joined with spaces). Prompts without a target text (or with
one that normalises to nothing) get no row.

Definitions, from OneIG-Bench (github.com/OneIG-Bench/OneIG-Benchmark, commit
41b4983, ``scripts/text/text_utils.py`` and ``scripts/text/text_score.py``):

- Normalisation (``preprocess_string``), applied to the OCR text and to the
  target alike: delete every character that is not a CJK ideograph
  (U+4E00-U+9FA5), an ASCII letter or digit, whitespace, or one of the French
  accented letters ``àâäéèêëîïôöùûüç`` (and upper case); if what is left holds a
  Chinese character, whitespace is deleted too; otherwise runs of whitespace
  become one space; strip. Case is kept: OneIG compares case-sensitively.
- ``edit_distance`` (ED): Levenshtein distance (unit costs) between the
  normalised OCR text and the normalised target.
- ``completion_rate`` (CR): 1 if ED == 0, else 0.
- ``word_accuracy`` (WAC): multiset overlap divided by the target's size. For
  English the units are the target's space-separated words; for Chinese they
  are its characters. The overlap count is ``matched_words`` and the target's
  size ``target_words``.
- ``language``: the language set whose maximum edit distance applies, as
  OneIG's script picks it by benchmark (``text_score.py``: ``MAX_EDIT_DISTANCE
  = 100`` in EN mode, ``50`` in ZH mode, for every target of the set, English
  brand names in the Chinese set included). It is the prompt's metadata
  ``text_language`` (``"en"``/``"zh"``; the OneIG importer sets it from the
  file it reads), else ``"zh"`` when the target contains a CJK ideograph
  (U+4E00-U+9FFF, OneIG's ``contains_chinese``), else ``"en"``. Stored with
  ``max_edit_distance``. (The word-accuracy units above follow the target
  itself, as OneIG's ``calculate_char_match_ratio`` does.)
- Text score, computed by OneIG on *model-level* means::

      text score = 1 - min(MAX_ED, ED) * (1 - CR) * (1 - WAC) / MAX_ED

  where ED and CR are means over images and WAC is ``sum(matched_words) /
  sum(target_words)`` over all images (a micro-average, not the mean of the
  per-image ratios). ``text_score`` below is that formula;
  :meth:`TextRendering.combine` gives the leaderboard exactly this figure for
  any slice (and for a slice that mixes languages, the image-weighted mean of
  the per-language scores).

Per image, ``value`` is the text accuracy ``1 - ED / max(len(target),
len(ocr))`` (1 for an exact match, 0 when nothing is read), and the
``text_score`` column is OneIG's formula on that image's own ED, CR and WAC.
The two differ because of the formula's scale: MAX_ED = 100 characters was
chosen for OneIG's long targets (slides and posters), so for a short target an
image with no text at all still has ``text_score = 1 - len(target)/100`` (0.89
for "HELLO WORLD"). The leaderboard figure is OneIG's model-level score
(:meth:`TextRendering.combine`), comparable with published OneIG numbers.

Differences from OneIG's pipeline (the formulas above are theirs): OneIG reads
the text with Qwen2.5-VL-7B (prompted "Recognize the text in the image, only
reply with the text content ...") and strips its stock replies ("No text
recognized.") before scoring; here the OCR is RapidOCR. PP-OCRv4's recogniser
sometimes drops the space between English words ("HELLOWORLD"), which costs
one edit and the word matches of those words.

The model-level score for any slice, in SQL (DuckDB)::

    SELECT model, language,
           avg(edit_distance) AS ed,
           avg(completion_rate) AS cr,
           sum(matched_words) / sum(target_words) AS wac,
           1 - least(any_value(max_edit_distance), avg(edit_distance))
               * (1 - avg(completion_rate))
               * (1 - sum(matched_words) / sum(target_words))
               / any_value(max_edit_distance) AS text_score
    FROM scores_text
    GROUP BY model, language
    ORDER BY language, text_score DESC;

Options:

- ``engine``: the OCR engine; only ``"rapidocr"`` for now. Design note for a
  VLM reader later (OneIG uses Qwen2.5-VL): an engine is anything that maps a
  list of PIL images to a list of recognised strings (see ``_RapidOcrEngine``);
  a VLM engine would add its name to ``ENGINES``, build its model in ``load``
  (honouring ``device``/``dtype``, batching the images through ``generate``
  with OneIG's prompt), and strip the model's "no text" replies before the
  string reaches the normalisation above. The scoring code does not change.
- ``batch_size``: images per ``score`` call from the runner. RapidOCR reads one
  image at a time on the CPU (its onnxruntime build), so this only sets how
  many images are loaded at once.

rapidocr is imported inside ``load`` only, so importing this module is cheap.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar, Sequence

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.base import ExtraColumn, ImageItem, Metric, TinyScorer
from bench_assets.metrics.tiny.judges import tiny_text_options

ENGINES = ("rapidocr",)
# OneIG's MAX_EDIT_DISTANCE: 100 for the English benchmark, 50 for the Chinese one.
MAX_EDIT_DISTANCE: dict[str, int] = {"en": 100, "zh": 50}

_ACCENTED = "àâäéèêëîïôöùûüçÀÂÄÉÈÊËÎÏÔÖÙÛÜÇ"
_DROP = re.compile(rf"[^\u4e00-\u9fa5a-zA-Z0-9\s{_ACCENTED}]")
_KEEP_NO_SPACE = re.compile(rf"[\u4e00-\u9fa5a-zA-Z0-9{_ACCENTED}]")
_CHINESE = re.compile("[\u4e00-\u9fff]")
_SPACES = re.compile(r"\s+")


# --------------------------------------------------------------------------- OneIG's definitions


def contains_chinese(text: str) -> bool:
    """OneIG's ``contains_chinese``: any CJK unified ideograph (U+4E00-U+9FFF)."""
    return bool(_CHINESE.search(text))


def normalize_text(text: str) -> str:
    """OneIG's ``preprocess_string``: drop punctuation and symbols, keep case; see the module docstring."""
    cleaned = _DROP.sub("", text)
    if contains_chinese(cleaned):
        return "".join(_KEEP_NO_SPACE.findall(text)).strip()
    return _SPACES.sub(" ", cleaned).strip()


def language_of(target: str) -> str:
    """``"zh"`` when the target holds a Chinese character, else ``"en"``."""
    return "zh" if contains_chinese(target) else "en"


def language_set_of(prompt: Prompt, target: str) -> str:
    """The language set whose MAX_ED applies: metadata ``text_language`` if valid, else the target's language."""
    declared = prompt.metadata.get("text_language")
    return declared if declared in MAX_EDIT_DISTANCE else language_of(normalize_text(target))


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit insert, delete and substitute costs."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def word_matches(target: str, ocr: str) -> tuple[int, int]:
    """OneIG's ``calculate_char_match_ratio`` on normalised strings: ``(matched, target size)``.

    Words (split on whitespace) for English targets, characters for Chinese
    ones; matches are counted as a multiset intersection.
    """
    if contains_chinese(target):
        target_units, ocr_units = Counter(target), Counter(ocr)
    else:
        target_units, ocr_units = Counter(target.split()), Counter(ocr.split())
    return sum((target_units & ocr_units).values()), sum(target_units.values())


def text_score(mean_ed: float, mean_cr: float, mean_wac: float, language: str) -> float:
    """OneIG's text score from (model-level) means: ``1 - min(M, ED)(1 - CR)(1 - WAC)/M``.

    ``M`` is ``MAX_EDIT_DISTANCE[language]`` (100 for ``"en"``, 50 for ``"zh"``).
    """
    try:
        max_ed = MAX_EDIT_DISTANCE[language]
    except KeyError:
        raise ValueError(f"language must be one of {sorted(MAX_EDIT_DISTANCE)}, got {language!r}") from None
    return 1.0 - min(max_ed, mean_ed) * (1.0 - mean_cr) * (1.0 - mean_wac) / max_ed


def compare_text(ocr_text: str, target_text: str, language: str | None = None) -> dict[str, Any]:
    """Every per-image column for one OCR reading of one target (no OCR involved).

    ``language``: the language set whose MAX_ED applies (default: the target's own).
    """
    target = normalize_text(target_text)
    ocr = normalize_text(ocr_text)
    language = language or language_of(target)
    distance = levenshtein(ocr, target)
    completion = 1.0 if distance == 0 else 0.0
    matched, total = word_matches(target, ocr)
    accuracy = matched / total if total > 0 else 0.0
    return {
        "value": 1.0 - distance / max(len(target), len(ocr), 1),
        "text_score": text_score(float(distance), completion, accuracy, language),
        "edit_distance": distance,
        "completion_rate": completion,
        "word_accuracy": accuracy,
        "matched_words": matched,
        "target_words": total,
        "max_edit_distance": MAX_EDIT_DISTANCE[language],
        "language": language,
        "ocr_text": ocr_text,
        "target_text": target_text,
    }


def target_text_of(prompt: Prompt) -> str | None:
    """The text the prompt asks for (metadata ``text``), or None if it has none worth scoring."""
    raw = prompt.metadata.get("text")
    if isinstance(raw, (list, tuple)) and all(isinstance(part, str) for part in raw):
        raw = " ".join(raw)
    if not isinstance(raw, str) or not normalize_text(raw):
        return None
    return raw


# --------------------------------------------------------------------------- OCR engines


class _RapidOcrEngine:
    """RapidOCR with the models bundled in its wheel; one image per call, CPU."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR()

    def read(self, images: Sequence[Any]) -> list[str]:
        out = []
        for image in images:
            result, _ = self._ocr(image)
            # Each entry is [box, text, confidence]; boxes come sorted in reading order.
            out.append(" ".join(entry[1] for entry in result or []))
        return out


# --------------------------------------------------------------------------- the metric


class TextRendering(Metric):
    name: ClassVar[str] = "text_rendering"
    table: ClassVar[str] = "scores_text"
    version: ClassVar[str] = "2"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {"engine": "rapidocr", "batch_size": 16}
    description: ClassVar[str] = (
        "OneIG-Bench text rendering: OCR (RapidOCR) against the prompt's target text; "
        "edit distance, completion rate, word accuracy and the text score "
        "1 - min(M, ED)(1 - CR)(1 - WAC)/M."
    )
    uses_metadata: ClassVar[tuple[str, ...]] = ("text",)
    tiny_scorer = TinyScorer(tiny_text_options)  # the real OCR models: they ship in the wheel
    extra_columns = (
        ExtraColumn("ocr_text", "OCR read", "quote"),
        ExtraColumn("target_text", "target", "quote"),
        ExtraColumn("edit_distance", "edit distance"),
    )

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if self.options["engine"] not in ENGINES:
            raise ValueError(f"metric {self.name}: engine must be one of {ENGINES}, got {self.options['engine']!r}")
        self._engine: Any = None

    def applies_to(self, prompt: Prompt) -> bool:
        return target_text_of(prompt) is not None

    # ------------------------------------------------------------ leaderboard
    @classmethod
    def example_row(cls, index: int, draw: float) -> dict[str, Any]:
        """Every column of a real row (the aggregate reads the language and the counts): read right or not."""
        target = f"SIGN {index}"
        return compare_text(target if draw >= 0.5 else "SIGM", target)

    @classmethod
    def summary_columns(cls) -> dict[str, Any]:
        """Per-language sums behind OneIG's model-level text score (see :meth:`combine`)."""
        import polars as pl

        columns: dict[str, Any] = {"value": pl.col("value"), "n": pl.lit(1.0)}
        for language in MAX_EDIT_DISTANCE:
            mine = pl.col("language") == language
            for key, column in (
                ("n", None),
                ("ed", "edit_distance"),
                ("cr", "completion_rate"),
                ("matched", "matched_words"),
                ("target", "target_words"),
            ):
                source = pl.lit(1.0) if column is None else pl.col(column).cast(pl.Float64)
                columns[f"{key}_{language}"] = pl.when(mine).then(source).otherwise(0.0)
        return columns

    @classmethod
    def combine(cls, totals: dict[str, Any]) -> Any:
        """OneIG's text score on the slice's means, per language; languages weighted by images."""
        import numpy as np

        weighted = 0.0
        images = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            for language, max_ed in MAX_EDIT_DISTANCE.items():
                n = np.asarray(totals[f"n_{language}"], dtype=float)
                ed = totals[f"ed_{language}"] / n
                cr = totals[f"cr_{language}"] / n
                wac = totals[f"matched_{language}"] / totals[f"target_{language}"]
                score = 1.0 - np.minimum(max_ed, ed) * (1.0 - cr) * (1.0 - wac) / max_ed
                weighted = weighted + np.where(n > 0, score * n, 0.0)
                images = images + n
            return weighted / images

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        """Create the OCR engine once. RapidOCR runs on the CPU whatever ``device`` says."""
        if self._engine is None:
            self._engine = _RapidOcrEngine()

    # ----------------------------------------------------------------- score
    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._engine is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        todo = [(item, target_text_of(item.prompt)) for item in items]
        todo = [(item, target) for item, target in todo if target is not None]
        rows: list[dict[str, Any]] = []
        step = self.options["batch_size"]
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            texts = self._engine.read([item.load() for item, _ in chunk])
            for (item, target), ocr_text in zip(chunk, texts):
                language = language_set_of(item.prompt, target)
                rows.append(
                    {"prompt_id": item.prompt.id, "image_index": item.index, **compare_text(ocr_text, target, language)}
                )
        return rows
