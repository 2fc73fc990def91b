"""Temporal stages: shot-boundary detection and chroma smoothing within shots.

Both are pull-based pipeline stages (``Iterator[Frame] -> Iterator[Frame]``) that hold a small,
bounded number of frames::

    frames = annotate(frames)                              # sets Frame.scene_start
    frames = ChromaSmoother.from_strength(0.5)(frames)     # smooths Frame.ab within shots
"""

from __future__ import annotations

from filmcolor.temporal.scenecut import SceneCutDetector, SceneCutParams, annotate, detect_cuts
from filmcolor.temporal.smoothing import ChromaSmoother

__all__ = ["ChromaSmoother", "SceneCutDetector", "SceneCutParams", "annotate", "detect_cuts"]
