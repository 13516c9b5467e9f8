"""The FID Inception (issue 22): clean-fid's resize, torch-fidelity's and torchmetrics' legacy path, on one
random-weight network whose state dict loads into theirs. A few images only: Inception on a CPU is slow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.resize import make_resizer
from PIL import Image
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

from bench_assets.metrics.inception import (
    PREPROCESSING,
    build_fid_inception,
    inception_features,
    load_fid_inception,
    tf1_bilinear_resize,
)
from bench_assets.stats.distribution import FeatureMoments, frechet_distance_of_moments

TORCH_FIDELITY_NAME = "inception-v3-compat"


def _image(seed: int, height: int, width: int) -> Image.Image:
    """Noise over a smooth gradient: edges for the resize filters to disagree on, and real structure."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, width)[None, :, None] * np.array([1.0, 0.5, 0.2])
    pixels = np.clip(ramp + rng.normal(0, 40, (height, width, 3)) + 20 * seed, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    sizes = [(48, 64), (70, 50), (64, 64), (33, 90), (80, 80)]  # all upscaled to 299, odd ratios included
    return [_image(seed, h, w) for seed, (h, w) in enumerate(sizes)]


@pytest.fixture(scope="module")
def model():
    return build_fid_inception(seed=0)


@pytest.fixture(scope="module")
def weights_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("fid_inception") / "random-fid-inception.pth"
    torch.save(model.state_dict(), path)
    return path


def _uint8_batch(images: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(img).transpose(2, 0, 1) for img in images]))


def test_clean_resize_equals_clean_fids_pil_bicubic_on_float(images):
    resizer = make_resizer("PIL", False, "bicubic", (299, 299))
    for img in images:
        ours = PREPROCESSING["clean"].resize(np.asarray(img)).numpy().transpose(1, 2, 0)
        theirs = resizer(np.asarray(img))
        assert ours.shape == theirs.shape == (299, 299, 3)
        assert np.abs(ours - theirs).max() <= 1.0  # the bound; in fact they are equal
        np.testing.assert_array_equal(ours, theirs)
    legacy = PREPROCESSING["legacy"].resize(np.asarray(images[0])).numpy().transpose(1, 2, 0)
    assert np.abs(legacy - resizer(np.asarray(images[0]))).max() > 5  # the modes differ: the row matters


def test_tf1_bilinear_resize_is_bit_equal_to_torch_fidelitys(images):
    for img in images:
        pixels = torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy()).to(torch.float32)
        theirs = interpolate_bilinear_2d_like_tensorflow1x(pixels[None], size=(299, 299), align_corners=False)[0]
        assert torch.equal(tf1_bilinear_resize(pixels), theirs)


def test_state_dict_loads_into_torch_fidelity_and_both_give_the_same_features(images, model, weights_path):
    extractor = FeatureExtractorInceptionV3(TORCH_FIDELITY_NAME, ["2048"], feature_extractor_weights_path=weights_path)
    theirs = extractor(_uint8_batch(images[:1]))[0].double().numpy()
    ours = inception_features(model, images[:1], mode="legacy")
    assert ours.shape == (1, 2048) and ours.std() > 0.1  # random weights still give informative features
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    antialiased = NoTrainInceptionV3(TORCH_FIDELITY_NAME, ["2048"], weights_path, antialias=True)
    np.testing.assert_allclose(
        inception_features(model, images[1:2], mode="torchmetrics"),
        antialiased(_uint8_batch(images[1:2])).double().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_legacy_fid_equals_torchmetrics_fid_on_the_same_weights(images, model, weights_path):
    real, fake = images[:2], images[2:]
    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights_path), antialias=False)
    for img in images:  # a torchmetrics batch holds one image size: one image at a time
        metric.update(_uint8_batch([img]), real=img in real)
    theirs = float(metric.compute())
    ours = frechet_distance_of_moments(
        FeatureMoments.of(inception_features(model, fake, mode="legacy", batch_size=2)),
        FeatureMoments.of(inception_features(model, real, mode="legacy")),
    )
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert ours > 1.0


def test_real_weights_load_from_a_path_and_a_missing_file_names_where_it_looked(
    model, weights_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # a real weights file in the user's hub cache would be found
    monkeypatch.delenv("BENCH_FID_INCEPTION_WEIGHTS", raising=False)
    loaded = load_fid_inception(weights_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with pytest.raises(FileNotFoundError, match="nothing-here.pth"):
        load_fid_inception(tmp_path / "nothing-here.pth")
    with pytest.raises(ValueError, match="unknown FID preprocessing"):
        inception_features(model, [], mode="jpeg")
