"""Temporal stages: shot-boundary detection, chroma smoothing and colour hold within shots.

All are pull-based pipeline stages (``Iterator[Frame] -> Iterator[Frame]``) that hold a small,
bounded amount of state::

    frames = annotate(frames)                              # sets Frame.scene_start
    frames = build_temporal(0.5, "flow")(frames)           # window, then flow-guided hold
"""

from __future__ import annotations

from filmcolor.temporal.chain import TemporalChain, build_temporal
from filmcolor.temporal.hold import ColourHold
from filmcolor.temporal.scenecut import SceneCutDetector, SceneCutParams, annotate, detect_cuts
from filmcolor.temporal.smoothing import ChromaSmoother

__all__ = [
    "ChromaSmoother",
    "ColourHold",
    "SceneCutDetector",
    "SceneCutParams",
    "TemporalChain",
    "annotate",
    "build_temporal",
    "detect_cuts",
]
