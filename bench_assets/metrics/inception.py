"""The FID Inception-v3 and its preprocessing: 2048-d pool features as FID, KID and precision/recall use them.

The network is the "FID Inception" of pytorch-fid and torch-fidelity: the
TF 2015-12-05 Inception graph rebuilt on torchvision's ``Inception3`` with
1008 classes and three patched blocks (``FIDInceptionA``/``C``/``E``): their
3×3 average pools leave the zero padding out of the mean
(``count_include_pad=False``, as TensorFlow does), and the last E block
(``Mixed_7c``) pools by max instead of average (the TF graph's quirk).
Parameter names are torchvision's, which are also torch-fidelity's, so one
state dict loads into both: the real weights file
(pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``) or a random-weight
model built here for tests and the demo (:func:`build_fid_inception`).

Preprocessing is one row of :data:`PREPROCESSING` — where FID numbers differ
between libraries (Parmar et al. 2022, "On Aliased Resizing and Surprising
Subtleties in GAN Evaluation"), so every FID row records its mode:

- ``clean``: clean-fid's resize: each channel as a float32 PIL ``F`` image,
  bicubic to 299², clipped to [0, 255], never re-quantised to uint8.
- ``legacy``: torch-fidelity's (and torchmetrics' with ``antialias=False``):
  uint8 input, TensorFlow 1.x bilinear resize (``align_corners=False``, no
  half-pixel centres, no antialiasing), as ``interpolate_bilinear_2d_like_tensorflow1x``.
- ``torchmetrics``: torchmetrics 1.9's default: torch bilinear with ``antialias=True``.

All three then map [0, 255] to [-1, 1] by ``(x − 128) / 128`` as those libraries do.

torch, torchvision and PIL are imported inside the functions: they are heavy
and only the scoring workers need them (the stats and storage layers import
this package's light modules).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the TF graph's 1008-way classifier; kept so real and random state dicts share keys

# The real weights, under the names pytorch-fid and torch-fidelity download them as (nothing downloads here).
WEIGHT_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_ENV = "BENCH_FID_INCEPTION_WEIGHTS"  # an explicit path to a weights file

# Where the TF graph's [0, 255] pixels become network input: (x - 128) / 128.
PIXEL_OFFSET = 128.0
PIXEL_SCALE = 128.0


def _pil_bicubic_float(pixels: np.ndarray) -> Any:
    """clean-fid's resize: per channel, a float32 ``F`` image, PIL bicubic to 299², clipped, not quantised."""
    import torch  # heavy; only scoring needs it
    from PIL import Image  # the resize filter is PIL's own

    channels = [
        np.asarray(
            Image.fromarray(pixels[:, :, index].astype(np.float32), mode="F").resize(
                (INPUT_SIZE, INPUT_SIZE), resample=Image.BICUBIC
            )
        ).clip(0, 255)
        for index in range(3)
    ]
    return torch.from_numpy(np.stack(channels).astype(np.float32))


def _tf1_bilinear_coordinates(in_size: int) -> tuple[Any, Any, Any]:
    """TF 1.x source coordinates for 299 outputs (``align_corners=False``): low index, high index, fraction."""
    import torch  # heavy; only scoring needs it

    position = torch.arange(0, INPUT_SIZE, 1, dtype=torch.float32) * torch.tensor(
        in_size / INPUT_SIZE, dtype=torch.float32
    )
    low = position.long()
    return low, (low + 1).clamp_max(in_size - 1), position - low.float()


def tf1_bilinear_resize(image: Any) -> Any:
    """Resize a (C, H, W) float tensor to 299² as TensorFlow 1.x ``resize_bilinear`` did (no antialias).

    Interpolates along x on the two source rows, then along y, in the same
    float32 operations and order as torch-fidelity, so the result is bit-equal.
    """
    x_low, x_high, x_frac = _tf1_bilinear_coordinates(image.shape[2])
    y_low, y_high, y_frac = _tf1_bilinear_coordinates(image.shape[1])

    def along_x(rows: Any) -> Any:
        left = rows[:, :, x_low]
        return left + (rows[:, :, x_high] - left) * x_frac.view(1, 1, -1)

    top, bottom = along_x(image[:, y_low, :]), along_x(image[:, y_high, :])
    return top + (bottom - top) * y_frac.view(1, -1, 1)


def _tf1_bilinear_uint8(pixels: np.ndarray) -> Any:
    import torch  # heavy; only scoring needs it

    return tf1_bilinear_resize(torch.from_numpy(pixels.transpose(2, 0, 1).copy()).to(torch.float32))


def _torch_antialiased_bilinear(pixels: np.ndarray) -> Any:
    import torch  # heavy; only scoring needs it

    image = torch.from_numpy(pixels.transpose(2, 0, 1).copy()).to(torch.float32)[None]
    resized = torch.nn.functional.interpolate(
        image, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0]


@dataclass(frozen=True)
class Preprocessing:
    """One way to turn an RGB uint8 image (H, W, 3) into the network's 3×299×299 float32 [0, 255] input."""

    resize: Callable[[np.ndarray], Any]
    reproduces: str


PREPROCESSING: dict[str, Preprocessing] = {
    "clean": Preprocessing(_pil_bicubic_float, "clean-fid mode='clean' (PIL bicubic on float32, no uint8)"),
    "legacy": Preprocessing(_tf1_bilinear_uint8, "torch-fidelity; torchmetrics with antialias=False (TF1 bilinear)"),
    "torchmetrics": Preprocessing(_torch_antialiased_bilinear, "torchmetrics 1.9 default (bilinear, antialias=True)"),
}


@lru_cache(maxsize=1)
def _fid_block_classes() -> dict[str, type]:
    """The three patched torchvision blocks (defined on first use: torchvision is heavy)."""
    import torch  # heavy; only scoring needs it
    from torchvision.models import inception as tv

    def avg_pool(x: Any) -> Any:
        return torch.nn.functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class FIDInceptionA(tv.InceptionA):
        """InceptionA whose pool branch averages without the padding."""

        def forward(self, x: Any) -> Any:
            branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
            branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(avg_pool(x))], 1)

    class FIDInceptionC(tv.InceptionC):
        """InceptionC whose pool branch averages without the padding."""

        def forward(self, x: Any) -> Any:
            branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            dbl = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
                dbl = layer(dbl)
            branch7x7dbl = self.branch7x7dbl_5(dbl)
            return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(avg_pool(x))], 1)

    class FIDInceptionE(tv.InceptionE):
        """InceptionE with the TF graph's pool: average without padding (Mixed_7b) or 3×3 max (Mixed_7c)."""

        def __init__(self, in_channels: int, max_pool: bool) -> None:
            super().__init__(in_channels)
            self.max_pool = max_pool

        def forward(self, x: Any) -> Any:
            stem = self.branch3x3_1(x)
            branch3x3 = torch.cat([self.branch3x3_2a(stem), self.branch3x3_2b(stem)], 1)
            dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            branch3x3dbl = torch.cat([self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl)], 1)
            pooled = torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else avg_pool(x)
            return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)

    class FIDInceptionV3(tv.Inception3):
        """Inception3 whose forward maps a [-1, 1] 299² batch to its 2048-d average-pool features."""

        def forward(self, x: Any) -> Any:
            for name in FEATURE_PATH:
                x = getattr(self, name)(x)
            return torch.flatten(x, 1)

    return {"A": FIDInceptionA, "C": FIDInceptionC, "E": FIDInceptionE, "net": FIDInceptionV3}


# The blocks the FID graph patches: attribute, block kind, constructor arguments.
FID_BLOCKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Mixed_5b", "A", {"in_channels": 192, "pool_features": 32}),
    ("Mixed_5c", "A", {"in_channels": 256, "pool_features": 64}),
    ("Mixed_5d", "A", {"in_channels": 288, "pool_features": 64}),
    ("Mixed_6b", "C", {"in_channels": 768, "channels_7x7": 128}),
    ("Mixed_6c", "C", {"in_channels": 768, "channels_7x7": 160}),
    ("Mixed_6d", "C", {"in_channels": 768, "channels_7x7": 160}),
    ("Mixed_6e", "C", {"in_channels": 768, "channels_7x7": 192}),
    ("Mixed_7b", "E", {"in_channels": 1280, "max_pool": False}),
    ("Mixed_7c", "E", {"in_channels": 2048, "max_pool": True}),
)

# The layers from the input to the 2048-d features (the classifier ``fc`` is not run).
FEATURE_PATH = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool",
)  # fmt: skip


def _fid_inception_skeleton() -> Any:
    """The FID Inception with torch's default initialisation, in eval mode (BatchNorm uses its running stats)."""
    classes = _fid_block_classes()
    net = classes["net"](num_classes=NUM_CLASSES, aux_logits=False, init_weights=False)
    for name, kind, arguments in FID_BLOCKS:
        setattr(net, name, classes[kind](**arguments))
    return net.eval().requires_grad_(False)


def build_fid_inception(seed: int = 0) -> Any:
    """A random-weight FID Inception (seeded; the global torch RNG is left untouched), for tests and the demo.

    Convolutions get He-normal weights and BatchNorms a perturbed affine and
    running statistics, so activations keep their scale through the network
    (with torch's default init the features come out ~1e-8) and depend on
    every weight and on the image.
    """
    import torch  # heavy; only scoring needs it

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _fid_inception_skeleton()
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
                module.running_mean.copy_(0.1 * torch.randn_like(module.running_mean))
                module.running_var.copy_(1.0 + 0.1 * torch.rand_like(module.running_var))
    return net


def fid_weight_candidates(weights_path: str | os.PathLike | None = None) -> list[Path]:
    """Where real weights are looked for, in order: the argument, $BENCH_FID_INCEPTION_WEIGHTS, torch's hub cache."""
    import torch  # heavy; torch.hub knows TORCH_HOME

    explicit = [Path(p) for p in (weights_path, os.environ.get(WEIGHTS_ENV)) if p]
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return explicit + [hub / name for name in WEIGHT_FILES]


def load_fid_inception(weights_path: str | os.PathLike | None = None) -> Any:
    """The FID Inception with the real TF-converted weights (pytorch-fid's or torch-fidelity's file).

    Nothing is downloaded: the file must already be at one of
    :func:`fid_weight_candidates`; a missing file is an error naming them all.
    """
    import torch  # heavy; only scoring needs it

    found = next((path for path in fid_weight_candidates(weights_path) if path.is_file()), None)
    if found is None:
        tried = ", ".join(str(p) for p in fid_weight_candidates(weights_path))
        raise FileNotFoundError(f"no FID Inception weights file; looked at {tried}")
    net = _fid_inception_skeleton()
    net.load_state_dict(torch.load(found, map_location="cpu", weights_only=True))
    return net


def preprocess(images: Sequence[Any], mode: str) -> Any:
    """A (n, 3, 299, 299) float32 batch in [-1, 1] from PIL images, resized as ``PREPROCESSING[mode]``."""
    import torch  # heavy; only scoring needs it

    resize = PREPROCESSING[mode].resize
    batch = torch.stack([resize(np.asarray(image.convert("RGB"), dtype=np.uint8)) for image in images])
    return (batch - PIXEL_OFFSET) / PIXEL_SCALE


def inception_features(
    model: Any, images: Sequence[Any], mode: str = "clean", batch_size: int = 32, device: str = "cpu"
) -> np.ndarray:
    """(len(images), 2048) float64 pool features of PIL images, ``batch_size`` at a time on ``device``.

    The model runs in float32 (as the reference libraries); features are
    returned as float64 for the statistics.
    """
    import torch  # heavy; only scoring needs it

    if mode not in PREPROCESSING:
        raise ValueError(f"unknown FID preprocessing {mode!r}; one of {sorted(PREPROCESSING)}")
    model = model.to(device)
    out = np.empty((len(images), FEATURE_DIM))
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = preprocess(images[start : start + batch_size], mode).to(device)
            out[start : start + len(batch)] = model(batch).double().cpu().numpy()
    return out
