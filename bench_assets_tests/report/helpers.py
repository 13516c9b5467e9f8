"""Reading what the report wrote: its data files are JavaScript assigning JSON."""

from __future__ import annotations

import json
from pathlib import Path


def read_data_file(report_dir: Path, key: str) -> dict:
    text = (report_dir / "data" / f"{key}.js").read_text(encoding="utf-8")
    prefix = f"window.BENCH_REPORT[{json.dumps(key)}]="
    assert prefix in text, f"data/{key}.js does not assign BENCH_REPORT[{key!r}]"
    return json.loads(text.split(prefix, 1)[1].rstrip().rstrip(";"))
