"""Join model chroma with the source's own luminance.

Video: the output keeps the decoded luma plane exactly and takes Cb/Cr, computed at the chroma
plane's resolution (half the frame in 4:2:0) from the upsampled a/b and the lightness of the
source luma there, so the cost does not grow with the model's render size.
Stills: a/b is upsampled to full resolution and joined with the source lightness in Lab.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch

from filmcolor.color.space import ab_to_cbcr, lab_to_rgb, luma_to_lightness
from filmcolor.frames import Frame
from filmcolor.infer.colorize import upsample_ab


def chroma_planes(frame: Frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """Cb/Cr ``(2, h, w)`` float32 in [-0.5, 0.5] for ``frame`` at ``size`` (default: half res)."""
    h, w = frame.shape
    ch, cw = size or ((h + 1) // 2, (w + 1) // 2)
    luma = cv2.resize(frame.luma, (cw, ch), interpolation=cv2.INTER_AREA)
    lightness = luma_to_lightness(torch.from_numpy(luma))[None, None]
    with torch.inference_mode():
        cbcr = ab_to_cbcr(lightness, upsample_ab(frame.ab, (ch, cw)))
    return cbcr[0].numpy()


def merge_video(frames: Iterator[Frame]) -> Iterator[Frame]:
    """Stage: set ``frame.extra['cbcr']`` (for the encoder) and drop ``frame.ab``."""
    for fr in frames:
        fr.extra["cbcr"] = chroma_planes(fr)
        fr.ab = None
        yield fr


def merge_rgb(frame: Frame) -> np.ndarray:
    """Full-resolution sRGB uint8 ``(H, W, 3)``: source lightness + upsampled model a/b."""
    lightness = luma_to_lightness(torch.from_numpy(frame.luma))[None, None]
    with torch.inference_mode():
        rgb = lab_to_rgb(torch.cat([lightness, upsample_ab(frame.ab, frame.shape)], 1))
    return (rgb[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
