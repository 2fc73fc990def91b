"""Chroma upsampling from the model's grid to the output resolution, guided by the film's luminance.

The model predicts a/b at a quarter of its render size (64 px on the short side at the default
256), and the output needs it at the chroma plane's resolution (half the frame in 4:2:0) or at
full resolution (stills). Plain bilinear interpolation spreads each coarse a/b sample over 8-30
output pixels regardless of what the picture shows, so colour bleeds a few pixels across object
borders: halos of sky-blue around heads, skin tone on the wall behind (#13).

``"bilateral"`` (the default, for every model) is joint bilateral upsampling (Kopf et al. 2007)
with the bilinear footprint: each output pixel takes the four coarse a/b samples bilinear
interpolation would take, but each weight is multiplied by how well that coarse cell's lightness
matches the pixel's own full-resolution lightness, ``exp(-(L_p - L_q)^2 / (2 sigma^2))``. At an
edge, a pixel on the dark side takes its colour mostly from the dark side's samples, so colour
stops where the lightness changes (a coarse cell that the edge cuts through has a mixed colour
and lightness and keeps some weight: on a step, at most a third of bilinear's bleed is left
2-3 px from the edge and none beyond 5 px); in flat regions the weights are the bilinear ones.
The result is always a convex combination of nearby predictions: it can never invent a
colour, overshoot or imprint film grain into the chroma (a guided filter, ``a * L + b``,
measured worse for exactly that reason: on the dev photos with their own downsampled a/b it raised CIEDE2000 from 1.45 to
2.0, where this lowers it to 1.40 and the edge error from 1.95 to 1.92).

Cost: the bilateral weights only differ much from the bilinear ones where the four coarse cells
around a pixel differ in lightness, so only those pixels (near edges) are computed the expensive
way; the rest is one bilinear resize. Cost at 1080p: ``python pipelines/benchmark.py`` (its
colour figures).

``"bilinear"`` is the previous behaviour, kept for comparison (``--upsample bilinear``).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from filmcolor.config import UPSAMPLE_METHODS as UPSAMPLERS
from filmcolor.config import check_choice

DEFAULT_UPSAMPLER: str = UPSAMPLERS[0]

RANGE_SIGMA: float = 0.1
"""Lightness tolerance of the bilateral weights, in Lab L / 100 (10 L units)."""

EDGE_SPREAD: float = RANGE_SIGMA
"""Pixels whose four coarse cells span less lightness than this keep the bilinear weights: only
pixels next to a real edge pay for bilateral weights. Measured on the dev photos with their own
downsampled a/b: a quarter of sigma gives CIEDE2000 1.402 and edge error 1.921, sigma 1.409 and
1.928 (bilinear: 1.446, 1.953), at a half to a third of the cost at 1080p."""


STRIPE_PIXELS: int = 1 << 22
"""Pixels per band of rows in the work on large pictures (bounds its temporary arrays)."""


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of each plane of ``(C, h, w)`` to ``size = (H, W)`` (half-pixel centres)."""
    h, w = size
    if x.shape[-2:] == (h, w):
        return np.array(x, dtype=np.float32, copy=True)
    # Each plane resized straight into the result: no second full-size copy (np.stack).
    out = np.empty((x.shape[0], h, w), np.float32)
    for plane, dst in zip(x, out, strict=True):
        cv2.resize(plane, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)
    return out


@functools.lru_cache(maxsize=8)
def _taps(
    h: int, w: int, out_h: int, out_w: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The bilinear footprint of a ``(h, w) -> (out_h, out_w)`` upsampling, per axis.

    Returns:
        ``(rows, cols, (wy, wx))``: ``rows[k]`` ``(out_h,)`` int coarse row of tap ``k`` (0 or 1)
        for each output row, likewise ``cols``; ``wy[k]``, ``wx[k]`` the bilinear weights. The
        same half-pixel convention as ``cv2.resize(INTER_LINEAR)``, with edge replication.
    """

    def axis(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
        pos = (np.arange(out, dtype=np.float64) + 0.5) * (n / out) - 0.5
        pos = np.clip(pos, 0.0, n - 1)
        i0 = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
        f = (pos - i0).astype(np.float32)
        idx = np.stack([i0, np.minimum(i0 + 1, n - 1)])
        return idx, np.stack([1.0 - f, f]).astype(np.float32)

    rows, wy = axis(h, out_h)
    cols, wx = axis(w, out_w)
    return rows, cols, (wy, wx)


def upsample_ab(
    ab: np.ndarray,
    size: tuple[int, int],
    guide: np.ndarray | None = None,
    method: str = DEFAULT_UPSAMPLER,
    sigma: float = RANGE_SIGMA,
) -> np.ndarray:
    """Upsample a/b ``(2, h, w)`` to ``size = (H, W)``.

    Args:
        ab: chroma on the model's grid, float32, shape ``(2, h, w)``.
        size: output ``(H, W)``.
        guide: lightness at the output size, ``(H, W)`` float32 in [0, 1] (Lab L / 100); needed
            by ``"bilateral"``, ignored by ``"bilinear"``.
        method: a name in :data:`UPSAMPLERS`.
        sigma: lightness tolerance of the bilateral weights.

    Returns:
        float32 ``(2, H, W)``.

    Raises:
        ValueError: wrong shapes, or ``"bilateral"`` without a guide of the output size.
        ConfigError: an unknown method.
    """
    check_choice("--upsample", method, UPSAMPLERS)
    ab = np.asarray(ab, dtype=np.float32)
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise ValueError(f"ab must have a shape of (2, h, w). Got {ab.shape}")
    out = _resize(ab, size)
    if method == "bilinear":
        return out
    if guide is None or guide.shape != tuple(size):
        got = None if guide is None else guide.shape
        raise ValueError(f"bilateral upsampling needs a guide of shape {tuple(size)}, got {got}")
    guide = np.asarray(guide, dtype=np.float32)
    h, w = ab.shape[1:]
    # Each coarse cell's lightness as the model saw it: the area average of the guide over it.
    small = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA)
    rows, cols, (wy, wx) = _taps(h, w, *size)
    # Lightness spread over each 2x2 block of coarse cells (the footprint of the pixels between
    # their centres); only pixels whose footprint spans an edge need bilateral weights.
    k = np.ones((2, 2), np.uint8)
    spread = cv2.dilate(small, k, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE) - cv2.erode(
        small, k, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE
    )
    flat_small = small.ravel()
    flat_ab = ab.reshape(2, -1)
    inv = np.float32(-0.5 / (sigma * sigma))
    # In bands of rows, so the per-pixel work arrays stay small however large the picture (a
    # 12000x9000 scan); each pixel's arithmetic is the same whatever the band.
    band = max(1, STRIPE_PIXELS // max(1, size[1]))
    for y0 in range(0, size[0], band):
        busy = spread[rows[0][y0:y0 + band, None], cols[0][None, :]] >= EDGE_SPREAD
        py, px = np.nonzero(busy)
        if py.size == 0:
            continue
        py += y0
        lp = guide[py, px]
        num = np.zeros((2, py.size), np.float32)
        den = np.zeros(py.size, np.float32)
        for ty in (0, 1):
            qy = rows[ty].take(py) * w
            sy = wy[ty].take(py)
            for tx in (0, 1):
                q = qy + cols[tx].take(px)
                d = lp - flat_small.take(q)
                # A tiny floor keeps the bilinear weights where no cell matches (a thin line
                # brighter than every coarse cell around it), so the division is always safe.
                weight = np.exp(d * d * inv)
                weight += np.float32(1e-4)
                weight *= sy * wx[tx].take(px)
                num += weight * flat_ab.take(q, axis=1)
                den += weight
        out[:, py, px] = num / den
    return out
