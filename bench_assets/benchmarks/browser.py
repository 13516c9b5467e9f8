"""Which headless browser the page benchmarks and the page tests drive.

Debian's ``chromium`` package, driven by Playwright's Python API with
``executable_path`` pointing at it: Playwright's own browser download is not
reachable offline. The tests' fixture (``bench_assets_tests/browser.py``) and
``make bench``'s report timings both find it here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MISSING = "needs Debian's `chromium` package (apt-get install -y chromium) and the `playwright` Python package"


def chromium_path() -> str | None:
    """The system browser: ``BENCH_CHROMIUM`` if set, else the first one on PATH."""
    explicit = os.environ.get("BENCH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None
