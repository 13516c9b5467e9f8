"""Reading what the report wrote: its data files are JavaScript assigning JSON."""

from __future__ import annotations

import json
from pathlib import Path


def read_data_file(report_dir: Path, key: str) -> dict:
    text = (report_dir / "data" / f"{key}.js").read_text(encoding="utf-8")
    prefix = f"window.BENCH_REPORT[{json.dumps(key)}]="
    assert prefix in text, f"data/{key}.js does not assign BENCH_REPORT[{key!r}]"
    return json.loads(text.split(prefix, 1)[1].rstrip().rstrip(";"))


def compare_page(report_dir: Path, category: str) -> dict:
    """A category's compare page as the browser assembles it: the page, with every listed model's cells."""
    page = read_data_file(report_dir, f"category/{category}")
    files = read_data_file(report_dir, "overview")["files"]["model"]
    parts = {m: read_data_file(report_dir, f"{files[m]}/category/{category}") for m in page["shards"]}
    return {**page, "cells": {m: p["cells"] for m, p in parts.items() if p["cells"]},
            "sets": {m: p["sets"] for m, p in parts.items() if p["sets"]}}


def prompt_page(report_dir: Path, prompt_file: str) -> dict:
    """A prompt's drill-down as the browser assembles it: the prompt, with every model's images and set values."""
    page = read_data_file(report_dir, f"prompt/{prompt_file}")
    files = read_data_file(report_dir, "overview")["files"]["model"]
    parts = [read_data_file(report_dir, f"{files[m]}/prompt/{prompt_file}") for m in sorted(files)
             if (report_dir / "data" / f"{files[m]}/prompt/{prompt_file}.js").is_file()]
    return {**page, "images": [i for p in parts for i in p["images"]], "sets": [s for p in parts for s in p["sets"]]}
