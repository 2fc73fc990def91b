"""Colour conversions: kornia's recipe (smoke, shapes, errors, reference values, round trip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from filmcolor.color.space import (
    ab_to_cbcr,
    lab_to_rgb,
    luma_to_lightness,
    rgb_to_lab,
    rgb_to_luma,
    ycbcr_to_rgb,
)

skcolor = pytest.importorskip("skimage.color")


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 1, 1), (2, 2, 3, 7, 3)])
def test_cardinality(shape):
    x = torch.rand(shape)
    assert rgb_to_lab(x).shape == x.shape
    assert lab_to_rgb(rgb_to_lab(x)).shape == x.shape


def test_exception():
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        rgb_to_lab(torch.rand(2, 4, 4))
    with pytest.raises(TypeError):
        rgb_to_lab(np.zeros((3, 2, 2)))


def test_unit_against_skimage():
    rng = np.random.default_rng(0)
    rgb = rng.random((16, 16, 3))
    ref = skcolor.rgb2lab(rgb)  # D65, 2 deg: the same convention
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    back = skcolor.lab2rgb(ref)
    ours_back = lab_to_rgb(torch.from_numpy(ref).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours_back, back, atol=2e-3)


def test_known_values():
    white = rgb_to_lab(torch.ones(3, 1, 1))[:, 0, 0]
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-2, rtol=0)
    red = rgb_to_lab(torch.tensor([1.0, 0, 0]).view(3, 1, 1))[:, 0, 0]
    torch.testing.assert_close(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.05, rtol=0)


def test_forth_and_back():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-5, rtol=0)


def test_gradcheck():
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64).clamp(0.1, 0.9).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))


def test_lightness_of_grey_matches_lab():
    v = torch.linspace(0, 1, 11)
    grey = v.view(1, 1, -1).expand(3, 1, -1)
    torch.testing.assert_close(luma_to_lightness(v), rgb_to_lab(grey)[0, 0], atol=1e-4, rtol=0)


def test_luma_weights():
    x = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert abs(float(rgb_to_luma(x)) - 0.299) < 1e-6


def test_cbcr_round_trip_keeps_colour():
    """Cb/Cr computed from (L, a/b) and joined with the same luma give back the Lab colour."""
    rgb = torch.tensor([0.8, 0.3, 0.2]).view(1, 3, 1, 1)
    lab = rgb_to_lab(rgb)
    cbcr = ab_to_cbcr(lab[:, :1], lab[:, 1:])
    y = rgb_to_luma(rgb)
    torch.testing.assert_close(ycbcr_to_rgb(y, cbcr), rgb, atol=2e-3, rtol=0)
    # Neutral a/b gives neutral chroma.
    zero = ab_to_cbcr(torch.full((1, 1, 1, 1), 50.0), torch.zeros(1, 2, 1, 1))
    assert float(zero.abs().max()) < 1e-4
