"""Image → prompt for the workbench: the captioner and the tagger, loaded once, on the first upload.

The proposers borrow the weights their metrics are configured with
(``data/config.yaml``'s ``metrics:``: the demo's tiny random-weight scorers
or the real VLM and OWLv2), so the workbench needs no settings of its own.
They run on this machine's GPU when it has one, else on the CPU; one upload
at a time (a lock), since the models are shared.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from bench_assets.core.config import load_config
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.proposers.propose import propose_prompt
from bench_assets.metrics.proposers.registry import configured_proposers
from bench_assets.metrics.registry import metric_options

if TYPE_CHECKING:
    from PIL import Image


def local_device() -> str:
    import torch  # heavy: only once an image is uploaded

    return "cuda" if torch.cuda.is_available() else "cpu"


class Proposals:
    """The proposers of one data directory, loaded on first use and kept."""

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self._proposers: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def propose(self, image: "Image.Image") -> dict[str, Any]:
        """``Proposal.as_json()`` for one validated image: prompt text, metadata objects, where each came from."""
        with self._lock:
            if self._proposers is None:
                proposers = configured_proposers(metric_options(load_config(self.paths)))
                device = local_device()
                for proposer in proposers.values():
                    proposer.ensure_loaded(device)
                self._proposers = proposers
            return propose_prompt(image, self._proposers["captioner"], self._proposers["tagger"]).as_json()
