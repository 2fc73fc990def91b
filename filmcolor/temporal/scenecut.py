"""Shot-boundary (hard cut) detection tuned for black-and-white film, as a streaming stage.

Why our own detector and not PySceneDetect: PySceneDetect is a good library, but for this stage it
is the wrong shape and weight. Its detectors score colour frames (HSV, or YUV histograms) and its
defaults (``ContentDetector(threshold=27)``, ``AdaptiveDetector(adaptive_threshold=3)``) are tuned
for modern colour video; it has no notion of old-film artefacts (exposure flicker, gate weave,
one-frame flashes or burnt frames, dust) beyond what a threshold can absorb; and it works on whole
video files through its own ``SceneManager``, while filmcolor needs a per-frame streaming API that
marks ``Frame.scene_start`` on frames that already flow through the pipeline. What we need fits in
about two hundred lines of numpy + OpenCV (already dependencies), so we write it and keep the
dependency list short. The ideas are the well-known ones (HAVC's luma-normalised difference with an
adaptive ratio, PySceneDetect's rolling-average criterion and ``min_scene_len``); the code is ours.

How a frame is scored:

1. The luma is shrunk to ``width`` pixels (``cv2.INTER_AREA``, then a 3x3 blur), so grain, dust
   and scratches average out and the cost does not depend on the source resolution.
2. The thumbnail is normalised to zero mean and unit standard deviation. A whole-frame exposure
   change (flicker, a fade) is an affine change of the luma and cancels out.
3. The score of frame *t* is the mean absolute difference of its normalised thumbnail and that
   of the *reference*, the last frame accepted into the current shot (usually *t-1*). Unrelated
   images score about 0.8-1.1; the same image plus motion or noise scores far less.
4. A frame is a cut *candidate* when its score is at least ``threshold`` and at least
   ``adaptive_ratio`` times the mean of the last ``window`` in-shot scores (so fast motion, which
   raises every score, does not fire). A candidate is then checked twice more: against a
   globally shifted reference (phase correlation; the shift must remove at least half of the
   score), so a pan, a jolt of the camera or gate weave is not a cut;
   and against the next ``lookahead`` frames: if one of them looks like the reference again, the
   candidate was a flash (a white, burnt or damaged frame) and is dropped. Finally a cut less
   than ``min_scene_len`` frames after the previous one is suppressed.
5. Frames with almost no contrast (``min_contrast``: black or white frames, the bottom of a
   fade) carry no information: they never start a shot and never become the reference. So a
   fade to black and back into the same shot is no cut, and a fade to black into a new shot
   gives exactly one cut, on the first frame of the new shot with visible contrast.

Known limits: a slow cross-dissolve is not a hard cut and is not reported (each step is small);
the smoother's luma weights keep colour from bleeding much there. A cut between two shots of
nearly the same composition and tone (a splice inside a static shot) can be missed. The onset of
violent motion (an object sweeping past the lens) can be reported as a cut; that only restarts
the smoothing window, which is harmless.

Checked on real footage (``../shared/data/clips``, not shipped): the two black-and-white films
with cuts have 7 hard cuts, all found on the right frame, with no false cut (camera shake in a
moving truck, blast effects); a third, static one gives none. On 28 colour clips turned grey
(unlabelled), two cuts fire, both at moments of extreme motion blur (judged by eye).

Usage::

    frames = annotate(frames)                   # stage: sets Frame.scene_start, yields in order
    starts = detect_cuts(lumas)                 # planning pass: [0, 131, 402, ...]
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from filmcolor.errors import ConfigError
from filmcolor.frames import Frame

logger = logging.getLogger("filmcolor")

FLASH_RETURN: float = 0.5
"""A frame after a candidate "returns" to the old shot when its distance to the reference is
below this fraction of the candidate's jump (or below the cut level itself)."""

BASELINE_FLOOR: float = 0.05
"""Lower bound of the adaptive baseline, so a perfectly static shot (scores near 0) does not turn
every small change into a huge ratio; ``threshold`` then decides alone."""

GAP_THRESHOLD: float = 0.7
"""Minimum score for a cut when blank or flash frames separate a frame from its reference: the
picture may have moved on during the gap (a fade to black and back), so only a change of nearly
everything (unrelated shots score 0.8-1.1) counts as a cut there."""

SHIFT_EXPLAINS: float = 0.5
"""A global shift explains a candidate only if, once undone, it removes at least half of the
score. Measured on synthetic pairs: jolts keep <= 0.24 of it, unrelated shots >= 0.76 (the
correlation always finds *some* shift, and a lucky one can pull the score under the cut level)."""

MAX_SHIFT_FRACTION: float = 0.25
"""Global shifts beyond this fraction of the thumbnail size are not trusted as camera motion."""

_EPS = 1e-6


@dataclass(frozen=True)
class SceneCutParams:
    """Settings of :class:`SceneCutDetector`; validated on construction.

    Attributes:
        threshold: minimum score (mean absolute difference of contrast-normalised thumbnails) for
            a cut. Unrelated shots score about 0.8-1.1, motion inside a shot typically 0.05-0.3.
        adaptive_ratio: a cut must also score this many times the recent in-shot average.
        window: number of recent in-shot scores averaged for the adaptive criterion.
        min_scene_len: minimum shot length in frames; a cut closer to the previous one is dropped.
        lookahead: frames of delay used to reject flashes of up to this many frames. ``0`` makes
            decisions immediate (no flash rejection).
        min_contrast: thumbnails whose luma standard deviation (luma in [0, 1]) is below this
            are treated as blank (black/white frames, the bottom of a fade).
        width: thumbnail width in pixels (height keeps the aspect ratio).
    """

    threshold: float = 0.4
    adaptive_ratio: float = 3.0
    window: int = 12
    min_scene_len: int = 8
    lookahead: int = 2
    min_contrast: float = 0.02
    width: int = 80

    def __post_init__(self) -> None:
        checks = (
            ("threshold", 0.0 < self.threshold <= 2.0, "in (0, 2]"),
            ("adaptive_ratio", self.adaptive_ratio >= 1.0, ">= 1"),
            ("window", self.window >= 1, ">= 1"),
            ("min_scene_len", self.min_scene_len >= 1, ">= 1"),
            ("lookahead", 0 <= self.lookahead <= 8, "in [0, 8]"),
            ("min_contrast", 0.0 <= self.min_contrast < 0.5, "in [0, 0.5)"),
            ("width", 16 <= self.width <= 512, "in [16, 512]"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(
                    f"scene-cut {name} must be {rule}, got {getattr(self, name)!r}; "
                    "use the defaults of SceneCutParams unless you have measured otherwise"
                )


@dataclass
class _Thumb:
    """A scored frame: its index, small normalised luma and whether it carries any contrast."""

    index: int
    small: np.ndarray  # blurred thumbnail, luma units
    z: np.ndarray  # zero-mean, unit-std version of ``small``
    informative: bool


def _thumbnail(index: int, luma: np.ndarray, params: SceneCutParams) -> _Thumb:
    if luma.ndim != 2:
        raise ValueError(f"luma must have a shape of (H, W). Got {luma.shape}")
    img = np.asarray(luma, dtype=np.float32)
    h, w = img.shape
    tw = min(params.width, w)
    th = max(1, round(h * tw / w))
    small = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    # The blur removes what survives the downscale of grain and dust and makes sub-pixel gate
    # weave nearly invisible; it costs nothing at this size.
    small = cv2.GaussianBlur(small, (3, 3), 0)
    mean = float(small.mean())
    std = float(small.std())
    z = (small - mean) / max(std, _EPS)
    return _Thumb(index, small, z.astype(np.float32), std >= params.min_contrast)


def _distance(a: _Thumb, b: _Thumb) -> float:
    """Mean absolute difference of two normalised thumbnails (``inf`` if their sizes differ)."""
    if a.z.shape != b.z.shape:
        return float("inf")
    return float(np.mean(np.abs(a.z - b.z)))


def _shifted_distance(a: _Thumb, b: _Thumb) -> float:
    """:func:`_distance` after undoing the global translation between ``b`` and ``a``.

    Only computed for cut candidates (rare), so its cost does not matter.
    """
    if a.z.shape != b.z.shape:
        return float("inf")
    h, w = a.z.shape
    # The Hann window keeps the picture's edges (which do not wrap around) from dominating the
    # correlation peak; without it large jolts are missed.
    window = cv2.createHanningWindow((w, h), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(b.z.astype(np.float64), a.z.astype(np.float64), window)
    if abs(dx) > MAX_SHIFT_FRACTION * w or abs(dy) > MAX_SHIFT_FRACTION * h:
        return float("inf")
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(b.z, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Compare only where both frames have real content: the replicated border would add a
    # difference that has nothing to do with the shot.
    bx, by = int(np.ceil(abs(dx))), int(np.ceil(abs(dy)))
    if 2 * bx >= w or 2 * by >= h:
        return float("inf")
    crop = (slice(by, h - by), slice(bx, w - bx))
    return float(np.mean(np.abs(a.z[crop] - moved[crop])))


class SceneCutDetector:
    """Streaming hard-cut detector for black-and-white film.

    Feed frames in decode order with :meth:`process_frame`; decisions come back ``lookahead``
    frames later (the delay that lets a one- or two-frame flash be told from a cut), and
    :meth:`flush` decides the last ones at end of stream. :meth:`__call__` / :meth:`annotate`
    wrap this as a pipeline stage. The first frame always starts a shot.

    Args:
        params: detector settings (defaults: :class:`SceneCutParams`).
    """

    def __init__(self, params: SceneCutParams | None = None) -> None:
        self.params = params if params is not None else SceneCutParams()
        self.reset()

    @property
    def lookahead(self) -> int:
        """How many frames a decision lags behind the newest frame fed in."""
        return self.params.lookahead

    def reset(self) -> None:
        """Forget all state; the next frame starts a shot."""
        self._pending: deque[_Thumb] = deque()
        self._ref: _Thumb | None = None
        self._history: deque[float] = deque(maxlen=self.params.window)
        self._seen_first = False
        # Positions count the frames fed in (not source indices, which may skip).
        self._count = 0
        self._ref_pos = 0
        self._last_cut_pos = 0

    def process_frame(self, index: int, luma: np.ndarray) -> list[int]:
        """Feed the next frame.

        Args:
            index: the frame's index (returned as-is in the result; must be unique).
            luma: luminance, shape ``(H, W)``, in [0, 1] (any dtype convertible to float32).

        Returns:
            Indices of frames now decided to start a shot: empty, or one index, which is
            ``lookahead`` frames older than ``index`` (``index`` itself when ``lookahead`` is 0,
            so ``bool(det.process_frame(i, y))`` is the per-frame answer in that case).

        Raises:
            ValueError: ``luma`` is not 2-D.
        """
        self._pending.append(_thumbnail(index, luma, self.params))
        if len(self._pending) <= self.params.lookahead:
            return []
        return self._decide_oldest()

    def flush(self) -> list[int]:
        """Decide the frames still held for lookahead (call at end of stream).

        Returns:
            Indices of the remaining frames that start a shot, in order.
        """
        cuts: list[int] = []
        while self._pending:
            cuts += self._decide_oldest()
        return cuts

    def _decide_oldest(self) -> list[int]:
        p = self.params
        cur = self._pending.popleft()
        pos = self._count
        self._count += 1
        if not self._seen_first:
            self._seen_first = True
            self._last_cut_pos = self._ref_pos = pos
            self._ref = cur if cur.informative else None
            return [cur.index]
        if not cur.informative:
            # Blank frame: keep the reference so the next visible frame is compared with the
            # last thing the audience saw (fade to black and back into the same shot = no cut).
            return []
        ref = self._ref
        if ref is None:  # everything so far was blank: this shot's content starts here
            self._ref, self._ref_pos = cur, pos
            return []
        score = _distance(cur, ref)
        baseline = max(float(np.mean(self._history)) if self._history else 0.0, BASELINE_FLOOR)
        cut_level = max(p.threshold, p.adaptive_ratio * baseline)
        gap = pos - self._ref_pos > 1
        if gap:
            cut_level = max(cut_level, GAP_THRESHOLD)
        if score < cut_level or _shifted_distance(cur, ref) < min(
            cut_level, SHIFT_EXPLAINS * score
        ):
            # Below the level, or a big change explained by a global shift (a pan, a jolt, gate
            # weave). The raw score goes into the history either way, so sustained motion
            # raises the adaptive baseline; a score across a gap says nothing about motion.
            if not gap:
                self._history.append(score)
            self._ref, self._ref_pos = cur, pos
            return []
        for nxt in self._pending:
            if nxt.informative and _distance(nxt, ref) < max(cut_level, FLASH_RETURN * score):
                logger.debug(
                    "scene cut: frame %d rejected as a flash (score %.3f)", cur.index, score
                )
                return []  # the reference stays: frames after the flash compare with it
        self._ref, self._ref_pos = cur, pos
        if pos - self._last_cut_pos < p.min_scene_len:
            logger.debug("scene cut: frame %d too close to the previous cut", cur.index)
            return []
        self._last_cut_pos = pos
        logger.debug("scene cut at frame %d (score %.3f, level %.3f)", cur.index, score, cut_level)
        return [cur.index]

    def annotate(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Pipeline stage: set ``frame.scene_start`` on every frame and yield them in order.

        Holds at most ``lookahead + 1`` frames. The detector is reset first, so the first
        frame of ``frames`` starts a shot (a chunk that begins mid-shot is marked too: the
        chunk planner puts chunk starts on cuts or primes the smoother itself).

        Args:
            frames: frames in decode order.

        Returns:
            The same frame objects, in the same order, with ``scene_start`` set.
        """
        self.reset()
        held: deque[Frame] = deque()
        for frame in frames:
            held.append(frame)
            decided = self.process_frame(frame.index, frame.luma)
            if len(held) > self.params.lookahead:
                out = held.popleft()
                out.scene_start = out.index in decided
                yield out
        decided = self.flush()
        while held:
            out = held.popleft()
            out.scene_start = out.index in decided
            yield out

    __call__ = annotate


def annotate(frames: Iterable[Frame], params: SceneCutParams | None = None) -> Iterator[Frame]:
    """Mark shot starts on a stream of frames (see :meth:`SceneCutDetector.annotate`).

    Args:
        frames: frames in decode order.
        params: detector settings (defaults: :class:`SceneCutParams`).

    Returns:
        The frames, in order, with ``scene_start`` set.
    """
    return SceneCutDetector(params).annotate(frames)


def detect_cuts(lumas: Iterable[np.ndarray], params: SceneCutParams | None = None) -> list[int]:
    """Planning pass: positions of the frames that start a shot.

    Args:
        lumas: luminance planes in order, each ``(H, W)`` in [0, 1]; only thumbnails are kept.
        params: detector settings (defaults: :class:`SceneCutParams`).

    Returns:
        0-based positions of shot starts, ``0`` included (empty for an empty input).
    """
    det = SceneCutDetector(params)
    starts: list[int] = []
    for i, luma in enumerate(lumas):
        starts += det.process_frame(i, luma)
    return starts + det.flush()
