"""Seeking to a frame by index: when the timestamps of a constant-rate stream map to indices.

Shared by previews and by guidance (a hint tied to one frame of a long film reads that frame
without decoding everything before it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

logger = logging.getLogger("filmcolor")

SEEK_REORDER_MARGIN: int = 16
"""Packets are demuxed this many frames past the range when checking timestamps: B-frame
reordering (at most 16 frames in H.264/HEVC) can store a frame of the range that late."""


@dataclass(frozen=True)
class _Timing:
    """What seeking needs to know about the video stream."""

    start_pts: int
    rate: Fraction | None  # the constant frame rate; None: variable (no seeking)
    time_base: Fraction | None

    def slot(self, pts: int) -> Fraction:
        """Frame position of ``pts`` (an integer for a frame exactly on the rate's grid)."""
        assert self.rate is not None and self.time_base is not None
        return (pts - self.start_pts) * self.time_base * self.rate


def _timing(src: Path) -> _Timing:
    import av

    with av.open(str(src)) as c:
        st = c.streams.video[0]
        start = st.start_time or 0
        avg, base, tb = st.average_rate, st.base_rate, st.time_base
        cfr = bool(avg and base and tb and Fraction(avg) == Fraction(base))
        return _Timing(start, Fraction(avg) if cfr else None, Fraction(tb) if tb else None)


def _locate(src: Path, timing: _Timing, first: int, end: int) -> int | None:
    """The pts of frame ``first``, if the timestamps around ``[first, end)`` map to indices.

    Seeks (as :func:`filmcolor.io.decode.decode` will) to the keyframe before frame ``first``
    and demuxes packets up to past ``end``. The mapping ``round(slot(pts))`` holds when every
    pts lies within a quarter frame of its slot (rounding to the time base moves it by at most
    half a tick), no slot holds two frames, and no slot from the keyframe on is missing. Then
    the frame with that pts is frame ``first`` of the film, as counting from the start would
    find (a constant-rate source drops no frames). ``None``: decode from the start and count.
    """
    import av

    if timing.rate is None or timing.time_base is None:
        return None
    ticks = 1 / (timing.rate * timing.time_base)  # per frame
    target = timing.start_pts + round(first * ticks)
    pts_of: dict[int, int] = {}
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        try:
            c.seek(target, backward=True, any_frame=False, stream=st)
            for packet in c.demux(st):
                if packet.size == 0:
                    continue  # the demuxer's flush packet
                if packet.pts is None:
                    return None
                slot = timing.slot(packet.pts)
                index = round(slot)
                if abs(slot - index) > Fraction(1, 4) or index in pts_of:
                    logger.debug("pts %d is not on the frame grid: no seek", packet.pts)
                    return None
                pts_of[index] = packet.pts
                if index >= end + SEEK_REORDER_MARGIN:
                    break
        except av.FFmpegError as exc:
            logger.debug("cannot check timestamps after a seek (%s): no seek", exc)
            return None
    lowest = min(pts_of, default=first + 1)
    if lowest > first or any(i not in pts_of for i in range(lowest, end)):
        logger.debug("frames %d-%d: timestamps do not map to indices: no seek", first, end)
        return None
    return pts_of[first]


def locate_frame(src: Path, index: int) -> int | None:
    """The pts of frame ``index`` of ``src`` if it can be sought to (see :func:`_locate`)."""
    return _locate(src, _timing(src), index, index + 1) if index > 0 else None
