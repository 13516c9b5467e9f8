"""MS-SSIM diversity: how structurally different the images of one prompt are.

For each prompt: ``1 - mean MS-SSIM`` over all unordered pairs of its images
(the diversity measure of Odena et al. 2017, "Conditional Image Synthesis with
Auxiliary Classifier GANs", sec. 4.2, which reports mean pairwise MS-SSIM;
higher here means more diverse). MS-SSIM is Wang, Simoncelli & Bovik 2003,
"Multi-scale structural similarity for image quality assessment", computed by
torchmetrics' ``multiscale_structural_similarity_index_measure``: no SSIM is
re-implemented here. A prompt with fewer than two images has no pairs and
yields no row (not a zero).

Settings, all torchmetrics' defaults, which are the paper's: 5 scales with
weights ``betas = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, an 11-px
gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03. Two choices are fixed:

- ``data_range = 1.0``: images are scaled to [0, 1]. torchmetrics' default
  (``None``) infers the range from the batch, which would make a pair's value
  depend on the other pairs in its batch.
- ``normalize = "relu"`` (torchmetrics' default): negative contrast/structure
  terms are clamped at 0 before the fractional powers, which would otherwise
  give NaN. MS-SSIM is then in [0, 1], and so is the diversity (snapped to
  0 or 1 when float round-off puts it a hair outside: ``base.snap_to_range``).

Size: after four 2x downsamplings the coarsest scale must still hold the
11-px window; torchmetrics requires ``size // 16 > kernel_size - 1``, i.e. at
least 176 px with the defaults. Every image is therefore resized (bicubic, to
``size x size``; non-square images are squashed) before scoring. MS-SSIM
depends on resolution, so compare values only at the same ``size``.

Options:

- ``size``: side of the square the images are resized to (default 256).
- ``batch_size``: image pairs per MS-SSIM call.
- ``betas``, ``kernel_size``, ``sigma``: MS-SSIM's scale weights and gaussian
  window (defaults as above).

The RGB channels are scored together (torchmetrics averages SSIM maps over
channels). torch and torchmetrics are imported inside ``load``/``score`` only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench_assets.metrics.base import ImageItem, PairwiseDiversity, TinyScorer, snap_to_range
from bench_assets.metrics.tiny.dino import tiny_msssim_options

# MS-SSIM scale weights (Wang et al. 2003), as in torchmetrics.
PAPER_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def min_msssim_size(kernel_size: int = 11, n_scales: int = len(PAPER_BETAS)) -> int:
    """The smallest image side torchmetrics accepts for MS-SSIM (176 with the defaults)."""
    divisor = max(1, n_scales - 1) ** 2
    return max(2**n_scales, divisor * kernel_size)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class MsssimDiversity(PairwiseDiversity):
    name: ClassVar[str] = "msssim_diversity"
    table: ClassVar[str] = "scores_msssim"
    version: ClassVar[str] = "1"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {
        "size": 256,
        "batch_size": 32,
        "betas": PAPER_BETAS,
        "kernel_size": 11,
        "sigma": 1.5,
    }
    description: ClassVar[str] = (
        "1 - mean pairwise MS-SSIM between the images of a prompt (torchmetrics; higher = more diverse)."
    )
    tiny_scorer = TinyScorer(tiny_msssim_options)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        for key in ("size", "batch_size", "kernel_size"):
            if not _positive_int(self.options[key]):
                raise ValueError(f"metric {self.name}: {key} must be a positive int, got {self.options[key]!r}")
        if self.options["kernel_size"] % 2 == 0:
            raise ValueError(f"metric {self.name}: kernel_size must be odd, got {self.options['kernel_size']}")
        sigma = self.options["sigma"]
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma <= 0:
            raise ValueError(f"metric {self.name}: sigma must be a positive number, got {sigma!r}")
        betas = self.options["betas"]
        if (
            not isinstance(betas, (list, tuple))
            or not betas
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0 for b in betas)
        ):
            raise ValueError(f"metric {self.name}: betas must be a non-empty list of weights >= 0, got {betas!r}")
        # A list from YAML and the default tuple are the same scorer.
        self.options["betas"] = tuple(float(b) for b in betas)
        self.options["sigma"] = float(sigma)
        smallest = min_msssim_size(self.options["kernel_size"], len(betas))
        if self.options["size"] < smallest:
            raise ValueError(
                f"metric {self.name}: size {self.options['size']} is too small for MS-SSIM with "
                f"{len(betas)} scales and a {self.options['kernel_size']}-px window; need >= {smallest}"
            )
        self._device: str | None = None

    def load(self, device: str, dtype: str = "fp32") -> None:
        """No weights: remember the device. MS-SSIM always runs in fp32; ``dtype`` is ignored."""
        import torchmetrics.functional.image  # noqa: F401  (fail here, not mid-step, if missing)

        self._device = str(device)

    def _to_tensor(self, item: ImageItem) -> Any:
        return self._pixels(item) / 255.0  # [0, 1], the data_range given to torchmetrics

    def _distance(self, images: Any, first: Any, second: Any) -> Any:
        """MS-SSIM of each (first[i], second[i]) pair of images (a similarity; ``_summary`` turns it round)."""
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

        return multiscale_structural_similarity_index_measure(
            images[first],
            images[second],
            gaussian_kernel=True,
            sigma=self.options["sigma"],
            kernel_size=self.options["kernel_size"],
            reduction="none",
            data_range=1.0,
            k1=0.01,
            k2=0.03,
            betas=self.options["betas"],
            normalize="relu",
        )

    def _summary(self, mean_msssim: float) -> dict[str, Any]:
        return {"value": snap_to_range(1.0 - mean_msssim, self.value_range), "mean_msssim": mean_msssim}
