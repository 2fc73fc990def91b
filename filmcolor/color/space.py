"""sRGB <-> CIE Lab (D65) and luma/chroma helpers, for torch tensors of shape ``(*, 3, H, W)``.

Conventions (kornia style): RGB is gamma-encoded sRGB in [0, 1]; Lab has L in [0, 100] and a/b in
roughly [-110, 110]. The functions accept any leading batch dimensions and check their input shape.

The one idea the pipeline rests on: the model only predicts chroma. Output frames keep the source
luminance plane untouched and take Cb/Cr from the model's a/b (:func:`ab_to_cbcr`), so luminance
detail, grain and exposure are the film's own and chroma can be predicted at low resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# D65 reference white (CIE 1931 2 deg), as used by scikit-image and OpenCV.
_WHITE = (0.95047, 1.0, 1.08883)
_RGB2XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_EPS = 216.0 / 24389.0  # (6/29)^3
_KAPPA = 24389.0 / 27.0

BT601 = (0.299, 0.587, 0.114)
"""Luma weights of ITU-R BT.601 (also PIL's ``convert('L')``), used to reduce colour to grey."""


def _check(image: torch.Tensor, name: str = "image") -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image)}")
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} must have a shape of (*, 3, H, W). Got {tuple(image.shape)}")


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function inverse (gamma-encoded -> linear light), elementwise."""
    return torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function (linear light -> gamma-encoded), elementwise."""
    return torch.where(
        x > 0.0031308, 1.055 * x.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * x
    )


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp(min=_EPS) ** (1.0 / 3.0), (_KAPPA * t + 16.0) / 116.0)


def _finv(t: torch.Tensor) -> torch.Tensor:
    t3 = t**3
    return torch.where(t3 > _EPS, t3, (116.0 * t - 16.0) / _KAPPA)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE Lab (D65).

    Args:
        image: sRGB in [0, 1], shape ``(*, 3, H, W)``.

    Returns:
        Lab, shape ``(*, 3, H, W)``: L in [0, 100], a/b in about [-128, 127].

    Example:
        >>> rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0].round()
        tensor([100., 0., 0.])
    """
    _check(image)
    lin = srgb_to_linear(image.clamp(0.0, 1.0))
    m = torch.tensor(_RGB2XYZ, dtype=image.dtype, device=image.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    white = torch.tensor(_WHITE, dtype=image.dtype, device=image.device).view(3, 1, 1)
    f = _f(xyz / white)
    fx, fy, fz = f.unbind(-3)
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([L, a, b], dim=-3)


def lab_to_rgb(image: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE Lab (D65) to sRGB.

    Args:
        image: Lab, shape ``(*, 3, H, W)``.
        clip: clamp the result to [0, 1] (out-of-gamut colours are clipped per channel).

    Returns:
        sRGB, shape ``(*, 3, H, W)``.
    """
    _check(image)
    L, a, b = image.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    white = torch.tensor(_WHITE, dtype=image.dtype, device=image.device).view(3, 1, 1)
    xyz = torch.stack([_finv(fx), _finv(fy), _finv(fz)], dim=-3) * white
    m = torch.linalg.inv(torch.tensor(_RGB2XYZ, dtype=torch.float64)).to(image.dtype)
    lin = torch.einsum("ij,...jhw->...ihw", m.to(image.device), xyz)
    if not clip:
        return linear_to_srgb(lin)
    return linear_to_srgb(lin.clamp(min=0.0)).clamp(0.0, 1.0)


def rgb_to_luma(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of gamma-encoded RGB: shape ``(*, 3, H, W)`` -> ``(*, 1, H, W)``."""
    _check(image)
    w = torch.tensor(BT601, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * w).sum(-3, keepdim=True)


def luma_to_lightness(luma: torch.Tensor) -> torch.Tensor:
    """Lab lightness L (0-100) of the neutral grey whose sRGB value is ``luma`` (0-1), elementwise.

    A grey pixel has R = G = B = luma, so this is exactly ``rgb_to_lab(grey)[..., 0]``.
    """
    y = srgb_to_linear(luma.clamp(0.0, 1.0))
    return 116.0 * _f(y) - 16.0


def ab_to_cbcr(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Chroma planes for an output frame: Lab (L, a/b) -> full-range BT.601 Cb/Cr centred on 0.

    Args:
        lightness: L, shape ``(*, 1, H, W)``.
        ab: a/b, shape ``(*, 2, H, W)``.

    Returns:
        ``(*, 2, H, W)`` with Cb, Cr in [-0.5, 0.5]. Joined with the source's own luma plane this
        gives the coloured frame; the source luma is never replaced.
    """
    rgb = lab_to_rgb(torch.cat([lightness, ab], dim=-3))
    r, g, b = rgb.unbind(-3)
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack([cb, cr], dim=-3)


def ycbcr_to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 Y'CbCr -> sRGB in [0, 1]: y ``(*, 1, H, W)``, cbcr ``(*, 2, H, W)``."""
    cb, cr = cbcr.unbind(-3)
    y = y[..., 0, :, :]
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], dim=-3).clamp(0.0, 1.0)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(N, C, H, W)`` to ``size`` = (h, w) (antialiased when shrinking with bilinear)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "bilinear":
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return F.interpolate(x, size=size, mode=mode)
