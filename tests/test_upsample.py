"""Luminance-guided chroma upsampling (:mod:`filmcolor.infer.upsample`, #13) and its use in
:mod:`filmcolor.infer.merge`.

Covered: ``"bilinear"`` is exactly OpenCV's bilinear resize; ``"bilateral"`` stops colour at a
sharp lightness step (wherever the step falls on the coarse grid) where bilinear bleeds, never
does worse than bilinear there, never overshoots the coarse values around a pixel, equals
bilinear on a flat guide; argument checks; dtype and shape, non-integer factors and the identity
size; and the merge functions (stills' RGB and video's Cb/Cr) carry less colour across an edge
with ``"bilateral"``. CPU only, no data files.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from filmcolor.config import UPSAMPLE_METHODS, check_choice
from filmcolor.errors import ConfigError
from filmcolor.frames import Frame
from filmcolor.infer.merge import chroma_planes, merge_rgb
from filmcolor.infer.upsample import (
    DEFAULT_UPSAMPLER,
    RANGE_SIGMA,
    UPSAMPLERS,
    upsample_ab,
)
from filmcolor.metrics.image import srgb_to_lab

H, W = 120, 160  # output size
h, w = 30, 40  # model grid (a quarter, as in the pipeline)


def area(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-downsample each plane of ``(C, H, W)`` to ``size = (h, w)``."""
    return np.stack(
        [cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_AREA) for p in planes]
    ).astype(np.float32)


def step_scene(edge: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A vertical step at column ``edge``: guide 0.2 left / 0.8 right (Lab L / 100), true a/b
    (0, 0) left / (40, 0) right at full size, and the true a/b area-downsampled to the grid."""
    guide = np.full((H, W), 0.2, np.float32)
    guide[:, edge:] = 0.8
    truth = np.zeros((2, H, W), np.float32)
    truth[0, :, edge:] = 40.0
    return guide, truth, area(truth, (h, w))


def distance_to_step(edge: int) -> np.ndarray:
    """Distance in pixels of each column's centre from the step (which lies at x = ``edge``)."""
    return np.abs(np.arange(W) + 0.5 - edge)


def smooth_random(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    return cv2.GaussianBlur(x, (0, 0), sigma)


# -- configuration -----------------------------------------------------------------------------


def test_methods_and_default() -> None:
    assert UPSAMPLERS == ("bilateral", "bilinear")
    assert DEFAULT_UPSAMPLER == "bilateral"
    assert RANGE_SIGMA == 0.1
    assert check_choice("--upsample", "bilinear", UPSAMPLE_METHODS) == "bilinear"
    with pytest.raises(ConfigError, match="bilateral"):
        check_choice("--upsample", "nearest", UPSAMPLE_METHODS)


# -- bilinear ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(H, W), (97, 131), (45, 61)])
def test_bilinear_is_cv2_resize_per_plane(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    ab = rng.uniform(-60, 60, size=(2, h, w)).astype(np.float32)
    out = upsample_ab(ab, size, method="bilinear")
    assert out.dtype == np.float32 and out.shape == (2, *size)
    for c in range(2):
        expected = cv2.resize(ab[c], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        assert np.array_equal(out[c], expected)
    # The guide is ignored by bilinear.
    guide = rng.uniform(0, 1, size=size).astype(np.float32)
    assert np.array_equal(upsample_ab(ab, size, guide, method="bilinear"), out)


# -- a sharp edge ------------------------------------------------------------------------------


@pytest.mark.parametrize("edge", [80, 82, 84, 86])
def test_bilateral_stops_colour_at_an_edge_between_or_on_cell_centres(edge: int) -> None:
    # A step on a coarse-cell border (80, 84) or through the middle of a cell (82, 86): no
    # colour more than 2 px from the step on either side.
    guide, _truth, ab = step_scene(edge)
    out = upsample_ab(ab, (H, W), guide, method="bilateral")
    far = distance_to_step(edge) > 2
    left, right = far & (np.arange(W) < edge), far & (np.arange(W) >= edge)
    assert np.abs(out[0][:, left]).max() <= 1.0
    assert out[0][:, right].min() >= 39.0
    assert np.abs(out[1]).max() <= 1e-4  # b is 0 everywhere, and stays so


@pytest.mark.parametrize("edge", [81, 83, 85, 87])
def test_bilateral_bounds_colour_at_an_edge_off_cell_centres(edge: int) -> None:
    # A step a quarter cell off a border or a centre: the cell it cuts has a mixed colour
    # (a = 10 or 30) and a mixed lightness (0.35 or 0.65), 1.5 sigma from either side's, so a
    # little of it still reaches 2-5 px across. Observed: at most 3.5 Lab units within 2-3 px,
    # 1.6 within 3-4, 0.44 within 4-5, 0 beyond (bilinear: 6.25, 3.75, 1.25, 0).
    guide, truth, ab = step_scene(edge)
    out = upsample_ab(ab, (H, W), guide, method="bilateral")
    lin = upsample_ab(ab, (H, W), method="bilinear")
    err = np.abs(out[0] - truth[0]).max(axis=0)
    err_lin = np.abs(lin[0] - truth[0]).max(axis=0)
    d = distance_to_step(edge)
    assert err[d > 2].max() <= 4.0
    assert err[d > 3].max() <= 2.0
    assert err[d > 4].max() <= 0.5
    assert err[d > 5].max() <= 1e-3
    for lo in (2, 3, 4):
        assert err[d > lo].max() <= 0.6 * err_lin[d > lo].max()


@pytest.mark.parametrize("edge", [80, 81, 82, 83, 85])
def test_bilateral_beats_bilinear_at_every_pixel_of_an_edge(edge: int) -> None:
    guide, truth, ab = step_scene(edge)
    out = upsample_ab(ab, (H, W), guide, method="bilateral")
    lin = upsample_ab(ab, (H, W), method="bilinear")
    err, err_lin = np.abs(out - truth), np.abs(lin - truth)
    assert np.all(err <= err_lin + 1e-4)
    assert err.sum() < 0.6 * err_lin.sum()
    # Every row is the same, up to float rounding (the scene is a vertical step).
    assert np.allclose(out, np.broadcast_to(out[:, :1, :], out.shape), atol=1e-4)


@pytest.mark.parametrize("edge", [81, 82, 83, 85])
def test_bilinear_bleeds_across_an_edge_off_the_cell_borders(edge: int) -> None:
    guide, truth, ab = step_scene(edge)
    lin = upsample_ab(ab, (H, W), guide, method="bilinear")
    err = np.abs(lin[0] - truth[0]).max(axis=0)
    cols = np.arange(W)
    two_px = (cols <= edge - 2) | (cols >= edge + 2)  # 1.5+ px from the step
    assert err[two_px].max() > 5.0
    bil = upsample_ab(ab, (H, W), guide, method="bilateral")
    assert np.abs(bil[0] - truth[0]).max(axis=0)[two_px].max() < err[two_px].max()


# -- no overshoot ------------------------------------------------------------------------------


def _tap_ranges(ab: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the min and max over the 2x2 coarse samples bilinear interpolation
    takes there (half-pixel centres, edge replication), ``(2, H, W)`` each."""
    n_h, n_w = ab.shape[1:]
    out_h, out_w = size

    def taps(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
        i0 = np.minimum(np.floor(pos).astype(int), max(n - 2, 0))
        return i0, np.minimum(i0 + 1, n - 1)

    r0, r1 = taps(n_h, out_h)
    c0, c1 = taps(n_w, out_w)
    corners = np.stack([ab[:, r][:, :, c] for r in (r0, r1) for c in (c0, c1)])
    return corners.min(axis=0), corners.max(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bilateral_never_overshoots(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ab = rng.uniform(-80, 80, size=(2, h, w)).astype(np.float32)
    g = smooth_random(rng, (H, W), 3.0)
    guide = np.clip(0.5 + 0.35 * g / np.abs(g).max(), 0, 1).astype(np.float32)
    guide[:, W // 2:] = np.clip(guide[:, W // 2:] + 0.3, 0, 1)  # and one hard edge
    out = upsample_ab(ab, (H, W), guide, method="bilateral")
    assert out.dtype == np.float32 and out.shape == (2, H, W)
    assert np.isfinite(out).all()
    for c in range(2):
        assert ab[c].min() - 1e-4 <= out[c].min() and out[c].max() <= ab[c].max() + 1e-4
    lo, hi = _tap_ranges(ab, (H, W))
    assert np.all(out >= lo - 1e-3) and np.all(out <= hi + 1e-3)
    # The guide really made a difference somewhere.
    assert np.abs(out - upsample_ab(ab, (H, W), method="bilinear")).max() > 1.0


def test_bilateral_is_bilinear_on_a_flat_guide() -> None:
    rng = np.random.default_rng(3)
    ab = rng.uniform(-80, 80, size=(2, h, w)).astype(np.float32)
    lin = upsample_ab(ab, (H, W), method="bilinear")
    flat = np.full((H, W), 0.37, np.float32)
    assert np.allclose(upsample_ab(ab, (H, W), flat, method="bilateral"), lin, atol=1e-4)
    # A gentle gradient (well under sigma per coarse cell) keeps the bilinear weights too.
    ramp = np.tile(np.linspace(0.3, 0.5, W, dtype=np.float32), (H, 1))
    assert np.allclose(upsample_ab(ab, (H, W), ramp, method="bilateral"), lin, atol=1e-4)


# -- errors ------------------------------------------------------------------------------------


def test_argument_errors() -> None:
    ab = np.zeros((2, h, w), np.float32)
    guide = np.zeros((H, W), np.float32)
    with pytest.raises(ConfigError):
        upsample_ab(ab, (H, W), guide, method="bicubic")
    with pytest.raises(ConfigError):
        upsample_ab(ab, (H, W), guide, method="")
    for bad in (np.zeros((3, h, w), np.float32), np.zeros((h, w), np.float32),
                np.zeros((1, 2, h, w), np.float32)):
        with pytest.raises(ValueError):
            upsample_ab(bad, (H, W), guide, method="bilateral")
        with pytest.raises(ValueError):
            upsample_ab(bad, (H, W), method="bilinear")
    with pytest.raises(ValueError):
        upsample_ab(ab, (H, W), None, method="bilateral")
    with pytest.raises(ValueError):
        upsample_ab(ab, (H, W), method="bilateral")
    with pytest.raises(ValueError):
        upsample_ab(ab, (H, W), np.zeros((H, W + 1), np.float32), method="bilateral")
    with pytest.raises(ValueError):
        upsample_ab(ab, (H, W), np.zeros((W, H), np.float32), method="bilateral")


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", UPSAMPLERS)
@pytest.mark.parametrize("size", [(H, W), (67, 93), (h, w), (31, 41)])
def test_output_dtype_and_shape(method: str, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(4)
    ab = rng.uniform(-50, 50, size=(2, h, w)).astype(np.float64)  # any float dtype in
    guide = rng.uniform(0, 1, size=size).astype(np.float32)
    out = upsample_ab(ab, size, guide, method=method)
    assert out.dtype == np.float32
    assert out.shape == (2, *size)
    assert np.isfinite(out).all()
    assert ab.min() - 1e-3 <= out.min() and out.max() <= ab.max() + 1e-3


@pytest.mark.parametrize("method", UPSAMPLERS)
def test_same_size_is_identity(method: str) -> None:
    rng = np.random.default_rng(5)
    ab = rng.uniform(-50, 50, size=(2, h, w)).astype(np.float32)
    guide = rng.uniform(0, 1, size=(h, w)).astype(np.float32)
    out = upsample_ab(ab, (h, w), guide, method=method)
    # At the identity size each pixel sits on its own cell's centre: all taps but one weigh 0.
    assert np.allclose(out, ab, atol=1e-4)
    assert out is not ab
    out[...] = 0  # a copy: the input is untouched
    assert np.abs(ab).max() > 0


def test_non_integer_factor_still_stops_at_the_edge() -> None:
    size = (97, 131)  # factor 3.23 / 3.28
    edge = 67
    guide = np.full(size, 0.2, np.float32)
    guide[:, edge:] = 0.8
    truth = np.zeros((2, *size), np.float32)
    truth[0, :, edge:] = 40.0
    ab = area(truth, (h, w))
    out = upsample_ab(ab, size, guide, method="bilateral")
    lin = upsample_ab(ab, size, method="bilinear")
    assert out.shape == (2, *size) and out.dtype == np.float32
    assert np.all(np.abs(out - truth) <= np.abs(lin - truth) + 1e-4)
    d = np.abs(np.arange(size[1]) + 0.5 - edge)
    err = np.abs(out[0] - truth[0]).max(axis=0)
    assert err[d > 5].max() <= 1e-3
    assert err[d > 2].max() <= 4.0


# -- through the merge -------------------------------------------------------------------------


@pytest.mark.parametrize("edge", [82, 83])
def test_merge_rgb_keeps_colour_on_its_side(edge: int) -> None:
    luma = np.full((H, W), 0.2, np.float32)
    luma[:, edge:] = 0.8
    truth = np.zeros((2, H, W), np.float32)
    truth[0, :, edge:] = 40.0
    frame = Frame(index=0, luma=luma, ab=area(truth, (h, w)))
    bil, lin = merge_rgb(frame, "bilateral"), merge_rgb(frame, "bilinear")
    for rgb in (bil, lin):
        assert rgb.dtype == np.uint8 and rgb.shape == (H, W, 3)
    a_bil, a_lin = srgb_to_lab(bil)[..., 1], srgb_to_lab(lin)[..., 1]
    col = edge - 2  # 1.5 px left of the step, on the grey side
    assert np.abs(a_bil[:, col]).max() < np.abs(a_lin[:, col]).min()
    assert np.abs(a_lin[:, col]).min() > 5.0
    # Far away both agree: grey on the left, red on the right.
    assert np.abs(a_bil[:, :edge - 8]).max() < 1.0 and np.abs(a_lin[:, :edge - 8]).max() < 1.0
    assert np.array_equal(bil[:, edge + 8:], lin[:, edge + 8:])
    assert a_bil[:, edge + 8:].min() > 25.0
    # The default merge is the bilateral one.
    assert np.array_equal(merge_rgb(frame), bil)


def test_chroma_planes_keep_colour_on_its_side() -> None:
    edge = 82  # column 41 at the chroma planes' half resolution
    luma = np.full((H, W), 0.2, np.float32)
    luma[:, edge:] = 0.8
    truth = np.zeros((2, H, W), np.float32)
    truth[0, :, edge:] = 40.0
    frame = Frame(index=0, luma=luma, ab=area(truth, (h, w)))
    bil = chroma_planes(frame, upsample="bilateral")
    lin = chroma_planes(frame, upsample="bilinear")
    assert bil.shape == lin.shape == (2, H // 2, W // 2)
    assert bil.dtype == np.float32
    cr_bil, cr_lin = np.abs(bil[1]), np.abs(lin[1])
    col = edge // 2 - 2  # 2 px left of the edge at half resolution
    assert cr_bil[:, col].max() < 0.005
    assert cr_lin[:, col].min() > 0.01
    assert cr_bil[:, col].max() < 0.2 * cr_lin[:, col].min()
    # Grey stays grey far on the left, red far on the right (Cr > 0).
    assert np.abs(bil[:, :, : col - 4]).max() < 1e-3
    assert bil[1][:, col + 8:].min() > 0.1
    assert np.array_equal(chroma_planes(frame), bil)
    # An explicit size.
    assert chroma_planes(frame, size=(H, W), upsample="bilateral").shape == (2, H, W)
