"""Colour-space conversions (sRGB, CIE Lab, YCbCr) for tensors and arrays."""

from filmcolor.color.space import (
    ab_to_cbcr,
    lab_to_rgb,
    luma_to_lightness,
    rgb_to_lab,
    rgb_to_luma,
)

__all__ = ["ab_to_cbcr", "lab_to_rgb", "luma_to_lightness", "rgb_to_lab", "rgb_to_luma"]
