"""LPIPS diversity: how different the images of one prompt are from each other.

For each prompt: the mean LPIPS distance (Zhang et al. 2018, ``lpips``
package, v0.1 calibration) over all unordered pairs of its images. Higher
means more diverse. A prompt with fewer than two images has no pairs and
yields no row (not a zero).

The backbone runs once per image, not once per pair member: the normalised
activations of a prompt's images are kept, and ``lpips.LPIPS.forward``'s
second half (squared difference, learned 1x1 layers, spatial mean, sum over
layers) runs on batches of index pairs from ``torch.combinations``. For n
images that is n backbone forwards instead of n(n-1); the result is the same
as calling ``LPIPS(a, b)`` pair by pair (the tests check it).

Options:

- ``net``: LPIPS backbone, ``alex`` (the usual choice), ``vgg`` or ``squeeze``.
- ``backbone``: ``pretrained`` uses torchvision's ImageNet weights for the
  backbone, from the user's torch hub cache; ``random`` uses a randomly
  initialised backbone (seeded, so it is the same in every process) and needs
  no download. The learned linear calibration layers ship inside the lpips
  wheel and are always the real ones.
- ``batch_size``: images per backbone forward, and image pairs per distance batch.
- ``size``: images are resized to ``size x size`` (bicubic) and scaled to
  [-1, 1] before the network; every pair therefore has the same shape.

torch and lpips are imported inside ``load``/``score`` only.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from bench_assets.metrics.base import ImageItem, PairwiseDiversity, TinyScorer
from bench_assets.metrics.tiny.clip import tiny_lpips_options

_NETS = ("alex", "vgg", "squeeze")
_BACKBONES = ("pretrained", "random")
# Seed for the randomly initialised backbone (backbone="random").
RANDOM_BACKBONE_SEED = 0


class LpipsDiversity(PairwiseDiversity):
    name: ClassVar[str] = "lpips_diversity"
    table: ClassVar[str] = "scores_lpips"
    version: ClassVar[str] = "1"
    # LPIPS distances are not bounded by 1; they can slightly exceed it.
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.5)
    default_options: ClassVar[dict[str, Any]] = {
        "net": "alex",
        "backbone": "pretrained",
        "batch_size": 64,
        "size": 256,
    }
    description: ClassVar[str] = (
        "Mean pairwise LPIPS distance between the images of a prompt (higher = more diverse)."
    )
    tiny_scorer = TinyScorer(partial(tiny_lpips_options, size=64))  # 64 px: no upscaling of tiny images

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if self.options["net"] not in _NETS:
            raise ValueError(f"metric {self.name}: net must be one of {_NETS}, got {self.options['net']!r}")
        if self.options["backbone"] not in _BACKBONES:
            raise ValueError(
                f"metric {self.name}: backbone must be one of {_BACKBONES}, got {self.options['backbone']!r}"
            )
        for key in ("batch_size", "size"):
            value = self.options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"metric {self.name}: {key} must be a positive int, got {value!r}")
        self._net: Any = None
        self._device: str | None = None

    def load(self, device: str, dtype: str = "fp32") -> None:
        """Load the LPIPS network. It is small and always runs in fp32; ``dtype`` is ignored."""
        if self._net is not None and self._device == str(device):
            return
        import warnings

        import lpips
        import torch

        random_backbone = self.options["backbone"] == "random"
        with warnings.catch_warnings():
            # lpips 0.1.4 calls torchvision with the deprecated `pretrained=` argument.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_BACKBONE_SEED)
                net = lpips.LPIPS(
                    net=self.options["net"],
                    pretrained=True,  # the linear calibration layers (shipped in the wheel)
                    pnet_rand=random_backbone,
                    verbose=False,
                )
        net.eval().requires_grad_(False)
        self._net = net.to(device)
        self._device = str(device)

    def _to_tensor(self, item: ImageItem) -> Any:
        return self._pixels(item) / 127.5 - 1.0  # as lpips.im2tensor: [0, 255] -> [-1, 1]

    def _prepare(self, images: Any) -> list[Any]:
        """Unit-normalised backbone activations per LPIPS layer, one forward per image.

        Exactly the first half of ``lpips.LPIPS.forward`` (v0.1: scaling layer,
        backbone, channel normalisation), computed once per image instead of
        once per pair.
        """
        import lpips
        import torch

        net = self._net
        step = self.options["batch_size"]
        per_chunk = []
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            if net.version == "0.1":
                chunk = net.scaling_layer(chunk)
            per_chunk.append([lpips.normalize_tensor(out) for out in net.net.forward(chunk)])
        return [torch.cat(layer) for layer in zip(*per_chunk)]

    def _distance(self, features: list[Any], first: Any, second: Any) -> Any:
        """LPIPS distance of each (first[i], second[i]) pair: the second half of ``LPIPS.forward``."""
        net = self._net
        total = 0
        for layer, lin in zip(features, net.lins):
            diff = (layer[first] - layer[second]) ** 2
            total = total + lin(diff).mean(dim=(2, 3))
        return total.flatten()
