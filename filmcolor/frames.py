"""The unit that flows through the pipeline: one decoded frame and everything that travels with it.

No I/O here. A :class:`Frame` carries the source luminance at full resolution (the output keeps it
exactly), its timestamp (``pts`` in ``time_base`` units, so VFR and 24000/1001 sources stay in sync),
and, once the model has run, the predicted chroma at the model's render resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

DURATION: str = "duration"
"""Key of :attr:`Frame.extra` holding the frame's duration in ``time_base`` units, as the source
container gives it (the encoder ends the last frame of a file with it)."""


@dataclass
class Frame:
    """One video frame (or still image) in the pipeline.

    Attributes:
        index: 0-based decode order index in the source.
        luma: full-resolution luminance, float32 in [0, 1], shape ``(H, W)``.
        pts: presentation timestamp in ``time_base`` units (``None`` for stills or unknown).
        time_base: the unit of ``pts``.
        scene_start: set by the scene-cut stage: ``True`` on the first frame of a shot.
        ab: model chroma, CIE Lab a/b in Lab units, shape ``(2, h, w)`` at render resolution.
        extra: free-form per-frame data stages may attach (never needed to encode).
    """

    index: int
    luma: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None
    scene_start: bool = False
    ab: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or ``None`` without a timestamp."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the full-resolution frame."""
        return self.luma.shape[0], self.luma.shape[1]


@dataclass(frozen=True)
class FrameRange:
    """Frames ``[start, end)`` of a video by 0-based index (the unit of chunks and previews).

    Attributes:
        start: first frame index.
        end: one past the last frame index.
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"need 0 <= start < end, got [{self.start}, {self.end})")

    def __len__(self) -> int:
        return self.end - self.start

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and self.start <= index < self.end
