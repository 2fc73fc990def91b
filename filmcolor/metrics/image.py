"""Full-reference and no-reference image metrics for colourisation: CIEDE2000, PSNR, SSIM and
Hasler & Süsstrunk colourfulness.

Every function takes numpy images of shape ``(H, W, 3)`` in RGB channel order, either ``uint8``
(0-255) or floating point in [0, 1]. Floats are validated (a float image with values far above 1
is almost always a 0-255 image passed by mistake, which would silently give wrong numbers) and
then mapped onto the 0-255 scale, so ``uint8`` and float versions of one image score the same.
All functions return a plain Python ``float``.

Conventions that matter when comparing with published tables:

* PSNR and SSIM are computed on RGB, on the 0-255 scale (``data_range=255``).
* SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5) on each RGB channel separately,
  averaged over channels; it equals scikit-image's ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1,
  data_range=255)``.
* Colourfulness defaults to the absolute-value variant used by DDColor and ColorMNet's evaluation
  code, on correctly ordered RGB (see :func:`colorfulness`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import cv2
import numpy as np
import torch

from filmcolor.color.space import rgb_to_lab

_FLOAT_TOLERANCE: float = 1e-3
"""How far outside [0, 1] a float image may stray (model outputs overshoot slightly) before it is
rejected as being on the wrong scale. Values inside the tolerance are clipped."""

SSIM_SIGMA: float = 1.5
"""Standard deviation of SSIM's Gaussian window (Wang et al. 2004)."""

SSIM_RADIUS: int = 5
"""Half-width of SSIM's window, ``int(3.5 * sigma + 0.5)`` (scikit-image's truncation): 11x11."""


def _check_rgb(img: np.ndarray, name: str) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(img)}")
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"{name} must have a shape of (H, W, 3). Got {img.shape}")
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 (0-255) or float (0-1), got dtype {img.dtype}")


def _unit_range(img: np.ndarray, name: str) -> np.ndarray:
    """Any-shape uint8 or float image -> float64 in [0, 1], rejecting floats on the wrong scale."""
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 (0-255) or float (0-1), got dtype {img.dtype}")
    out = img.astype(np.float64)
    lo, hi = float(out.min(initial=0.0)), float(out.max(initial=0.0))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf")
    if lo < -_FLOAT_TOLERANCE or hi > 1.0 + _FLOAT_TOLERANCE:
        raise ValueError(
            f"float {name} must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "pass uint8 for 0-255 images or divide by 255"
        )
    return np.clip(out, 0.0, 1.0)


def _float01(img: np.ndarray, name: str) -> np.ndarray:
    """Validate an RGB image and return it as float64 in [0, 1]."""
    _check_rgb(img, name)
    return _unit_range(img, name)


def _float255(img: np.ndarray, name: str) -> np.ndarray:
    """Validate an RGB image and return it as float64 on the 0-255 scale."""
    if isinstance(img, np.ndarray) and img.dtype == np.uint8:
        _check_rgb(img, name)
        return img.astype(np.float64)
    return _float01(img, name) * 255.0


def _uint8(img: np.ndarray, name: str) -> np.ndarray:
    """Validate an RGB image and return it as uint8; floats are rounded to the nearest level."""
    if isinstance(img, np.ndarray) and img.dtype == np.uint8:
        _check_rgb(img, name)
        return img
    return np.rint(_float01(img, name) * 255.0).astype(np.uint8)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    _check_rgb(pred, "pred")
    _check_rgb(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(
            f"pred and truth must have the same shape. Got {pred.shape} and {truth.shape}"
        )


def srgb_to_lab(img: np.ndarray) -> np.ndarray:
    """Convert an sRGB image to CIE Lab (D65, 2 degree observer), in float64.

    This goes through :func:`filmcolor.color.space.rgb_to_lab`, so metrics and the training loss
    share one definition of Lab.

    Args:
        img: RGB image ``(H, W, 3)``, uint8 or float in [0, 1].

    Returns:
        Lab image ``(H, W, 3)`` float64: L in [0, 100], a/b in about [-128, 127].
    """
    rgb = torch.from_numpy(_float01(img, "img")).permute(2, 0, 1)
    return rgb_to_lab(rgb).permute(1, 2, 0).numpy()


def delta_e_ciede2000(
    lab1: np.ndarray, lab2: np.ndarray, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0
) -> np.ndarray:
    """Elementwise CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation).

    Args:
        lab1: Lab colours, shape ``(*, 3)``.
        lab2: Lab colours, shape ``(*, 3)`` (the same as ``lab1``).
        k_l: lightness weight (1 for the reference conditions).
        k_c: chroma weight.
        k_h: hue weight.

    Returns:
        ΔE00 per colour, shape ``(*)``, float64.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    if lab1.shape != lab2.shape or lab1.shape[-1:] != (3,):
        raise ValueError(f"lab1 and lab2 must share a shape (*, 3). Got {lab1.shape}, {lab2.shape}")
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)

    # Step 1: stretch a* by G so that low-chroma colours get a more perceptual hue.
    c_bar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c7 = c_bar**7
    g = 0.5 * (1.0 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    # atan2(0, 0) is 0, which is the formula's convention for achromatic colours.
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0

    # Step 2: differences. The hue difference takes the short way round the circle.
    dlp = l2 - l1
    dcp = c2p - c1p
    chroma_prod = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(chroma_prod == 0.0, 0.0, dh)
    d_hp = 2.0 * np.sqrt(chroma_prod) * np.sin(np.radians(dh) / 2.0)

    # Step 3: the weighting functions, evaluated at the mean colour. The mean hue is also
    # taken the short way round; when one colour is achromatic the plain sum is used.
    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180.0,
        0.5 * h_sum,
        np.where(h_sum < 360.0, 0.5 * (h_sum + 360.0), 0.5 * (h_sum - 360.0)),
    )
    h_bar = np.where(chroma_prod == 0.0, h_sum, h_bar)
    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_bar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_bar))
        + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    cp7 = cp_bar**7
    r_c = 2.0 * np.sqrt(cp7 / (cp7 + 25.0**7))
    l50 = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / np.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * cp_bar
    s_h = 1.0 + 0.015 * cp_bar * t
    # The rotation term corrects the tilted ellipses in the blue region (hue near 275 deg).
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c

    tl = dlp / (k_l * s_l)
    tc = dcp / (k_c * s_c)
    th = d_hp / (k_h * s_h)
    return np.sqrt(tl**2 + tc**2 + th**2 + r_t * tc * th)


def ciede2000(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference between two RGB images.

    Both images are converted from sRGB to CIE Lab (D65) and ΔE00 is averaged over pixels.
    Lower is better; about 1 is a just-noticeable difference.

    Args:
        pred: predicted RGB image ``(H, W, 3)``, uint8 or float in [0, 1].
        truth: reference RGB image of the same shape.

    Returns:
        Mean ΔE00 over pixels.
    """
    _check_pair(pred, truth)
    return float(delta_e_ciede2000(srgb_to_lab(pred), srgb_to_lab(truth)).mean())


def psnr(pred: np.ndarray, truth: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio on RGB, in dB.

    The mean squared error is taken over all pixels and all three channels. Identical images
    have zero error and return ``math.inf`` (scikit-image's convention too); drop or cap such
    images before averaging PSNR over a data set.

    Args:
        pred: predicted RGB image ``(H, W, 3)``, uint8 or float in [0, 1].
        truth: reference RGB image of the same shape.
        data_range: peak value on the 0-255 scale that both images are mapped to.

    Returns:
        PSNR in dB (``inf`` for identical images).
    """
    _check_pair(pred, truth)
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    mse = float(np.mean((_float255(pred, "pred") - _float255(truth, "truth")) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * SSIM_SIGMA**2))
    return k / k.sum()


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) on RGB, Gaussian-weighted.

    Local statistics use an 11x11 Gaussian window with sigma 1.5 and population (not sample)
    covariance, on the 0-255 scale (C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2). The SSIM map is
    computed on each RGB channel, the border where the window would leave the image (5 px) is
    dropped, and the result is the mean over pixels and channels. This reproduces
    ``skimage.metrics.structural_similarity(pred, truth, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1, data_range=255)``.

    Args:
        pred: predicted RGB image ``(H, W, 3)``, uint8 or float in [0, 1]; H, W >= 11.
        truth: reference RGB image of the same shape.

    Returns:
        Mean SSIM, 1 for identical images.
    """
    _check_pair(pred, truth)
    win = 2 * SSIM_RADIUS + 1
    if min(pred.shape[:2]) < win:
        raise ValueError(f"ssim needs images of at least {win}x{win} pixels, got {pred.shape[:2]}")
    x = _float255(pred, "pred")
    y = _float255(truth, "truth")
    k = _gaussian_window()

    def blur(z: np.ndarray) -> np.ndarray:
        # The border rows are cropped below, so the padding mode never reaches the result.
        return cv2.sepFilter2D(z, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    s = ((2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    r = SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def colorfulness(img: np.ndarray, variant: Literal["abs", "paper"] = "abs") -> float:
    """Colourfulness M of Hasler & Süsstrunk (2003), on the 0-255 RGB scale.

    With opponent components ``rg = R - G`` and ``yb = 0.5 (R + G) - B`` over all pixels,
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` (population std).

    Args:
        img: RGB image ``(H, W, 3)``, uint8 or float in [0, 1]. Channel order matters: this is
            RGB, not OpenCV's BGR.
        variant: ``"abs"`` (default) uses ``|R - G|`` and ``|0.5 (R + G) - B|``, the variant in
            DDColor's and ColorMNet's evaluation code, so numbers are comparable with their
            tables; ``"paper"`` uses the signed components of the original paper.

    Returns:
        Colourfulness M (0 for any grey image, with either variant).
    """
    if variant not in ("abs", "paper"):
        raise ValueError(f"variant must be 'abs' or 'paper', got {variant!r}")
    rgb = _float255(img, "img")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    if variant == "abs":
        rg, yb = np.abs(rg), np.abs(yb)
    sigma = math.hypot(float(rg.std()), float(yb.std()))
    mu = math.hypot(float(rg.mean()), float(yb.mean()))
    return sigma + 0.3 * mu


def delta_colorfulness(
    preds: Iterable[np.ndarray],
    truths: Iterable[np.ndarray],
    variant: Literal["abs", "paper"] = "abs",
) -> float:
    """ΔCF: absolute difference of the *mean* colourfulness of two image sets.

    This is the DDColor / MultiColor convention, a difference of means, not a mean of per-image
    differences; the two sets need not be paired or of equal size.

    Args:
        preds: predicted RGB images.
        truths: reference RGB images.
        variant: colourfulness variant, see :func:`colorfulness`.

    Returns:
        ``|mean CF(preds) - mean CF(truths)|``.
    """
    cf_pred = [colorfulness(p, variant) for p in preds]
    cf_truth = [colorfulness(t, variant) for t in truths]
    if not cf_pred or not cf_truth:
        raise ValueError("delta_colorfulness needs at least one image in each set")
    return abs(float(np.mean(cf_pred)) - float(np.mean(cf_truth)))
