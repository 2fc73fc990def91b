"""Metrics that judge colourisation: per-image fidelity and colourfulness, temporal consistency of
video, and a Fréchet distance on ImageNet features.

Inputs are numpy RGB images ``(H, W, 3)``, uint8 or float in [0, 1]; every metric returns a
``float``. Image metrics live in :mod:`filmcolor.metrics.image`, video metrics (batch functions
and streaming accumulators) in :mod:`filmcolor.metrics.video`, the FID stand-in in
:mod:`filmcolor.metrics.frechet` (its encoder and weights load only when
:class:`FrechetFeatures` is created).
"""

from __future__ import annotations

from filmcolor.metrics.frechet import (
    FrechetFeatures,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_stats,
)
from filmcolor.metrics.image import (
    ciede2000,
    colorfulness,
    delta_colorfulness,
    delta_e_ciede2000,
    psnr,
    srgb_to_lab,
    ssim,
)
from filmcolor.metrics.video import (
    CDCAccumulator,
    StillFlickerAccumulator,
    WarpErrorAccumulator,
    cdc,
    cdc_clips,
    edge_error,
    edge_mask,
    still_flicker,
    valid_flow_mask,
    warp_error,
)

__all__ = [
    "CDCAccumulator",
    "FrechetFeatures",
    "StillFlickerAccumulator",
    "WarpErrorAccumulator",
    "cdc",
    "cdc_clips",
    "ciede2000",
    "colorfulness",
    "delta_colorfulness",
    "delta_e_ciede2000",
    "edge_error",
    "edge_mask",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "psnr",
    "srgb_to_lab",
    "ssim",
    "still_flicker",
    "valid_flow_mask",
    "warp_error",
]
