"""Flow-guided colour hold: chroma that stays put over time and travels with what moves (#13).

The luma-guided window (:mod:`filmcolor.temporal.smoothing`) averages 9 frames; a wall, a sky or
a face that stays still for seconds still drifts slowly from one window to the next, which a
viewer sees as shimmer. This stage follows the window and carries the colour forward along the
picture's own motion::

    S_t = c_t * warp(S_{t-1}) + (1 - c_t) * ab_t

``warp`` moves the previous state along the optical flow from frame ``t`` back to ``t - 1``
(OpenCV DIS on the lightness at the a/b grid's size, a fraction of a millisecond per frame), so
the colour of a moving object moves with it. The confidence ``c_t`` is :data:`DEFAULT_KEEP`
where the warped previous lightness matches the current one, and falls towards 0 where it does
not (occlusions, new objects, flow errors: the new prediction takes over at once, no ghost
trails); its exposure gain is matched first, as in the window, so film flicker does not switch
it off. In a still region the recursion averages about ``1 / (1 - keep)`` frames, far longer
than the window, and never reaches across a cut: both states restart at every ``scene_start``.

**Bit-identical chunks with carried state.** A recursion remembers its whole past, which a chunk
that starts mid-shot cannot replay. So two such recursions run side by side, each restarted on a
fixed grid of absolute frame indices (period :data:`DEFAULT_PERIOD`, the second shifted by half a
period), and the output blends them with triangular weights that are zero at each one's restart::

    out_t = w_t * S0_t + (1 - w_t) * S1_t,    w_t = 1 - |(t mod P) - P/2| / (P/2)

A state never contributes at its restart and the weights always sum to 1, so the output has no
seam; and the output at frame ``t`` depends only on frames ``t - P + 1 .. t`` of its shot: a chunk
or a preview that decodes :attr:`ColourHold.context` frames before its first one reproduces an
uninterrupted run bit for bit (the same argument as the scene-cut detector's grid, #4). The
memory is two a/b states and one small lightness plane, whatever the film's length.

Measured with ``python pipelines/footage_study.py`` (the shipped model on the real colour clips
turned grey; the README's "Colour on footage" table) and ``python pipelines/evaluate.py --no-photos
--variant NAME:keep=...,period=...,hold_sigma=...,chroma_tol=...`` for the settings below (five
clips, 100 frames: the cleanest clips' still-pixel flicker is the hard case).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from filmcolor.errors import ConfigError
from filmcolor.frames import Frame
from filmcolor.temporal.smoothing import grid_luma

logger = logging.getLogger("filmcolor")

DEFAULT_PERIOD: int = 48
"""Restart period of each of the two recursions, in frames (2 s at 24 fps); a chunk needs this
many frames of look-back."""

DEFAULT_KEEP: float = 0.97
"""Largest weight of the carried colour: a still region averages about ``1 / (1 - keep)``
frames (here about 33, on top of the window's 9). Measured (before the chroma tolerance was
added): 0.85 left the cleanest clip's still-pixel flicker at 2.3x the truth's, 0.92 at 1.7x,
0.97 at 1.3x, with no more error where things move; a 96-frame period gained little over 48."""

DEFAULT_LUMA_SIGMA: float = 0.02
"""Lightness mismatch (luma in [0, 1]) between the warped previous frame and this one at which
the carried colour's weight drops to ``exp(-1/2)`` of :data:`DEFAULT_KEEP` (0.04 left a disc's
colour trailing 3.5 units behind it on the synthetic test, 0.02 two)."""

DEFAULT_CHROMA_TOLERANCE: float = 20.0
"""a/b distance (Lab units) between the carried colour and the new prediction at which the
carried colour's weight drops to ``exp(-1/2)`` of what the lightness allows: flicker is a few
units, a real change (a new object, an edge dragged along by the flow) tens. Measured: 12 let
the cleanest clip's still pixels flicker at 1.57x the truth's, 20 at 1.49x, 30 at 1.40x, with
trails behind a moving disc of 3.0, 3.5 and 3.8 units."""

MAX_GAIN: float = 1.5
"""Largest exposure gain matched between consecutive frames (as the window's)."""

FLOW_PRESET: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
"""DIS preset: at the a/b grid's size (64 px high) the ultrafast preset already tracks objects
within a pixel, and it costs a fraction of a millisecond."""

_MIN_MEDIAN = 1e-3
_MIN_FLOW_SIZE = 12  # DIS needs a patch at its coarsest level


class ColourHold:
    """Pipeline stage: flow-guided recursive hold of ``frame.ab`` within shots.

    Args:
        keep: largest weight of the carried colour, in [0, 1); 0 passes a/b through unchanged.
        period: restart period of the two staggered recursions, an even number of frames >= 2.
        luma_sigma: lightness tolerance of the confidence (luma in [0, 1]).
        chroma_tolerance: a/b change (Lab units) that counts as a real change, not flicker.

    Raises:
        ConfigError: a parameter is out of range.
    """

    def __init__(
        self,
        keep: float = DEFAULT_KEEP,
        period: int = DEFAULT_PERIOD,
        luma_sigma: float = DEFAULT_LUMA_SIGMA,
        chroma_tolerance: float = DEFAULT_CHROMA_TOLERANCE,
    ) -> None:
        if not 0.0 <= keep < 1.0:
            raise ConfigError(f"colour hold keep must be in [0, 1), got {keep!r}")
        if isinstance(period, bool) or not isinstance(period, int) or period < 2 or period % 2:
            raise ConfigError(f"colour hold period must be an even integer >= 2, got {period!r}")
        if not luma_sigma > 0:
            raise ConfigError(f"colour hold luma_sigma must be > 0, got {luma_sigma!r}")
        if not chroma_tolerance > 0:
            raise ConfigError(f"colour hold chroma_tolerance must be > 0, got {chroma_tolerance!r}")
        self.keep = float(keep)
        self.chroma_tolerance = float(chroma_tolerance)
        self.period = period
        self.luma_sigma = float(luma_sigma)

    @property
    def context(self) -> int:
        """Frames of look-back a chunk needs before its first frame for bit-identical output."""
        return self.period if self.keep > 0 else 0

    def __repr__(self) -> str:
        return (f"ColourHold(keep={self.keep}, period={self.period}, luma_sigma={self.luma_sigma}, "
                f"chroma_tolerance={self.chroma_tolerance})")

    def blend_weight(self, index: int) -> float:
        """Weight of the first recursion at absolute frame ``index`` (the second gets the rest)."""
        half = self.period // 2
        return 1.0 - abs((index % self.period) - half) / half

    def __call__(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Hold ``frame.ab`` steady along the motion; yields every frame, in order, at once.

        Frames without ``ab`` pass through and restart the recursions (as a cut does).

        Args:
            frames: frames in order, ``ab`` of shape ``(2, h, w)`` (or ``None``).

        Returns:
            The same frame objects, ``ab`` replaced by a new float32 array.
        """
        if self.keep == 0:
            yield from frames
            return
        dis = cv2.DISOpticalFlow_create(FLOW_PRESET)
        states: list[np.ndarray] | None = None
        prev_luma: np.ndarray | None = None
        grid: tuple[np.ndarray, np.ndarray] | None = None
        half = self.period // 2
        for fr in frames:
            ab = fr.ab
            if ab is None:
                states, prev_luma = None, None
                yield fr
                continue
            h, w = ab.shape[1:]
            luma = grid_luma(fr, (h, w))
            restart = fr.scene_start or states is None or states[0].shape != ab.shape
            if restart:
                states = [ab.astype(np.float32, copy=True), ab.astype(np.float32, copy=True)]
            else:
                assert states is not None and prev_luma is not None
                if grid is None or grid[0].shape != (h, w):
                    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32),
                                         np.arange(h, dtype=np.float32))
                    grid = (gx, gy)
                keep, flow = self._confidence(dis, prev_luma, luma, grid)
                inv_tol = np.float32(-0.5 / (self.chroma_tolerance**2))
                for k in (0, 1):
                    if (fr.index - k * half) % self.period == 0:
                        states[k] = ab.astype(np.float32, copy=True)  # its weight is 0 here
                    else:
                        warped = self._warp(states[k], grid, flow)
                        # A new prediction far from the carried colour is a change (something
                        # new came into view, or the flow dragged a moving edge's colour along),
                        # not flicker: let it through at once rather than trail behind.
                        d = warped - ab
                        k_eff = keep * np.exp((d[0] * d[0] + d[1] * d[1]) * inv_tol)
                        states[k] = k_eff * warped + (np.float32(1.0) - k_eff) * ab
            prev_luma = luma
            w0 = np.float32(self.blend_weight(fr.index))
            assert states is not None
            # S1 + w0 (S0 - S1): exactly the prediction where both states were just restarted.
            fr.ab = (states[1] + w0 * (states[0] - states[1])).astype(np.float32)
            yield fr

    def _confidence(
        self,
        dis: cv2.DISOpticalFlow,
        prev: np.ndarray,
        cur: np.ndarray,
        grid: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel weight of the carried colour ``(h, w)``, and the flow from ``cur`` back to
        ``prev`` ``(h, w, 2)`` that carries it."""
        h, w = cur.shape
        if min(h, w) >= _MIN_FLOW_SIZE:
            u8 = [np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8) for x in (cur, prev)]
            # Flow from this frame back to the previous one: where each pixel came from.
            flow = dis.calc(u8[0], u8[1], None)
        else:
            flow = np.zeros((h, w, 2), np.float32)
        warped = self._warp(prev[None], grid, flow)[0]
        gain = 1.0
        mp, mc = float(np.median(warped)), float(np.median(cur))
        if mp > _MIN_MEDIAN and mc > _MIN_MEDIAN:
            gain = min(max(mc / mp, 1.0 / MAX_GAIN), MAX_GAIN)
        diff = warped * np.float32(gain) - cur
        conf = np.exp(diff * diff * np.float32(-0.5 / (self.luma_sigma**2)))
        # Pixels whose flow leaves the picture have no past: take the new prediction there.
        x = grid[0] + flow[..., 0]
        y = grid[1] + flow[..., 1]
        conf[(x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)] = 0.0
        return (np.float32(self.keep) * conf).astype(np.float32), flow

    @staticmethod
    def _warp(
        planes: np.ndarray, grid: tuple[np.ndarray, np.ndarray], flow: np.ndarray
    ) -> np.ndarray:
        """Sample each plane of ``(C, h, w)`` at ``x + flow(x)`` (bilinear, border replicated)."""
        mx = grid[0] + flow[..., 0]
        my = grid[1] + flow[..., 1]
        return np.stack(
            [cv2.remap(p, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
             for p in planes]
        )
