"""Library chatter goes to a log file, not the terminal.

``make demo`` and ``bench run`` print the platform's own progress (a line
per run, the leaderboard, where the report is). Progress bars and warnings
a user can do nothing about ("Writing model shards", "No pretrained weights
loaded", diffusers' float32 notices) are written to ``data/.cache/bench.log``
instead, where they are still there for a bug report.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


# Libraries that attach their own terminal handler instead of propagating to the root logger.
LIBRARY_LOGGERS = ("diffusers", "transformers", "huggingface_hub", "open_clip", "timm", "torch")


def _disable_progress_bars() -> None:
    for module, call in (("huggingface_hub.utils", "disable_progress_bars"),
                         ("transformers.utils.logging", "disable_progress_bar"),
                         ("diffusers.utils.logging", "disable_progress_bar")):
        try:
            getattr(__import__(module, fromlist=[call]), call)()
        except (ImportError, AttributeError):
            continue


@contextmanager
def library_output_to(log_file: Path) -> Iterator[Path]:
    """Route Python warnings and library log records to ``log_file`` while the block runs."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    terminal = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
    for h in terminal:
        root.removeHandler(h)
    root.addHandler(handler)
    _disable_progress_bars()  # first: importing the libraries installs their own handlers
    libraries = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    saved = {name: (lg.handlers[:], lg.propagate) for name, lg in libraries.items()}
    for lg in libraries.values():
        lg.handlers = [handler]
        lg.propagate = False
    logging.captureWarnings(True)
    try:
        yield log_file
    finally:
        logging.captureWarnings(False)
        for name, lg in libraries.items():
            lg.handlers, lg.propagate = saved[name]
        root.removeHandler(handler)
        handler.close()
        for h in terminal:
            root.addHandler(h)
