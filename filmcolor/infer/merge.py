"""Join model chroma with the source's own luminance.

Video: the output keeps the decoded luma plane exactly and takes Cb/Cr, computed at the chroma
plane's resolution (half the frame in 4:2:0) from the upsampled a/b and the lightness of the
source luma there, so the cost does not grow with the model's render size.
Stills: a/b is upsampled to full resolution and joined with the source lightness in Lab.
In both, a/b is upsampled guided by that lightness (:mod:`filmcolor.infer.upsample`), so colour
stops at the edges the film shows, whatever model predicted it.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch

from filmcolor.color.space import ab_to_cbcr, lab_to_rgb, luma_to_lightness
from filmcolor.frames import Frame
from filmcolor.infer.upsample import DEFAULT_UPSAMPLER, STRIPE_PIXELS, upsample_ab


def _ab_at(frame: Frame, lightness: torch.Tensor, upsample: str) -> torch.Tensor:
    """The frame's a/b at the size of ``lightness`` ``(1, 1, h, w)``, as ``(1, 2, h, w)``."""
    size = tuple(lightness.shape[-2:])
    guide = (lightness[0, 0] / 100.0).numpy()
    return torch.from_numpy(upsample_ab(frame.ab, size, guide, method=upsample))[None]


def chroma_planes(
    frame: Frame, size: tuple[int, int] | None = None, upsample: str = DEFAULT_UPSAMPLER
) -> np.ndarray:
    """Cb/Cr ``(2, h, w)`` float32 in [-0.5, 0.5] for ``frame`` at ``size`` (default: half res).

    Args:
        frame: a frame with ``luma`` and model ``ab``.
        size: ``(h, w)`` of the chroma planes.
        upsample: a/b upsampling method (:data:`filmcolor.infer.upsample.UPSAMPLERS`).
    """
    h, w = frame.shape
    ch, cw = size or ((h + 1) // 2, (w + 1) // 2)
    luma = cv2.resize(frame.luma, (cw, ch), interpolation=cv2.INTER_AREA)
    lightness = luma_to_lightness(torch.from_numpy(luma))[None, None]
    with torch.inference_mode():
        cbcr = ab_to_cbcr(lightness, _ab_at(frame, lightness, upsample))
    return cbcr[0].numpy()


class VideoMerger:
    """Stage: set ``frame.extra['cbcr']`` (for the encoder) and drop ``frame.ab``.

    Args:
        upsample: a/b upsampling method (:data:`filmcolor.infer.upsample.UPSAMPLERS`).
    """

    def __init__(self, upsample: str = DEFAULT_UPSAMPLER) -> None:
        self.upsample = upsample

    def __call__(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for fr in frames:
            fr.extra["cbcr"] = chroma_planes(fr, upsample=self.upsample)
            fr.ab = None
            yield fr


def merge_video(frames: Iterator[Frame]) -> Iterator[Frame]:
    """Stage: :class:`VideoMerger` with the default upsampling."""
    return VideoMerger()(frames)


def merge_rgb(frame: Frame, upsample: str = DEFAULT_UPSAMPLER) -> np.ndarray:
    """Full-resolution sRGB uint8 ``(H, W, 3)``: source lightness + upsampled model a/b.

    The colour conversion runs in bands of rows (:data:`STRIPE_PIXELS`): its float temporaries
    would otherwise be several times the picture's size, which for a large scan is gigabytes.
    """
    h, w = frame.shape
    lightness = luma_to_lightness(torch.from_numpy(frame.luma))[None, None]
    out = np.empty((h, w, 3), np.uint8)
    band = max(1, STRIPE_PIXELS // max(1, w))
    with torch.inference_mode():
        ab = _ab_at(frame, lightness, upsample)
        for y0 in range(0, h, band):
            lab = torch.cat([lightness[..., y0:y0 + band, :], ab[..., y0:y0 + band, :]], 1)
            rgb = lab_to_rgb(lab)[0].permute(1, 2, 0).numpy()
            out[y0:y0 + band] = (rgb * 255.0 + 0.5).astype(np.uint8)
    return out
