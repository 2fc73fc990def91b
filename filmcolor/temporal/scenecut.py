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
   fade) carry no information: they never become the reference. So a fade to black and back
   into the same shot is no cut, and a fade to black into a new shot gives exactly one cut, on
   the first frame of the new shot with visible contrast. The reference expires when more
   than ``max_gap`` frames (about a second) follow it: the first informative frame after a longer
   blank stretch (or a longer run of rejected flashes) starts a new shot, subject to
   ``min_scene_len``. Old films fade to black constantly, and a memory that outlived any
   blank stretch could not be reproduced by a preview that starts near its range (#4).

Bounded memory (#4). A preview, or any stream that starts mid-film, must take the same
decisions as a run over the whole film, from a bounded warm-up. Age limits on each piece of state
are not enough for that: a decision depends on the state, the state on earlier decisions, and
two streams whose states differ once can keep deciding differently for as long as the footage
lets them (a lower adaptive baseline flags more candidates, which then stay out of the history
that would raise it). So the state is restarted on a fixed grid of absolute frame indices, the
way the colouriser aligns its batches: the frames of segment ``k`` (indices ``[k*S, (k+1)*S)``,
``S = segment``) are decided by a tracker started fresh on frame ``(k-1)*S`` (or on the stream's
first frame, if later) and fed every frame since. Two trackers run at any time (one deciding,
one warming up for the next segment); they share the thumbnails, so the cost is two cheap
distance computations per frame. The invariant, relied on by :mod:`filmcolor.preview`:

    the decisions for frames ``>= i`` of a stream with consecutive indices that starts at any
    frame ``s <= warmup_start(i)`` are those of the whole film (for the frames followed by
    ``lookahead`` frames of that stream, or by the film's end); in particular a stream started
    ``memory = 2*S`` frames before ``i`` decides like the whole film from ``i`` on.

Proof: a decision for frame ``t`` in segment ``k`` is a function of the frames the deciding
tracker saw, ``[(k-1)*S, t + lookahead]``, and of nothing else (the tracker starts empty, and
``warmup_start(t) = (k-1)*S``); a stream that starts at or before ``(k-1)*S`` starts that
tracker on the same frame. ``min_scene_len`` is enforced within a tracker; a tracker also sees
the cuts of the segment before its own (its warm-up), so reported cuts closer than
``min_scene_len`` across a segment edge need two trackers to disagree about that earlier cut.

Known limits: a slow cross-dissolve is not a hard cut and is not reported (each step is small);
the smoother's luma weights keep colour from bleeding much there. A cut between two shots of
nearly the same composition and tone (a splice inside a static shot) can be missed. The onset of
violent motion (an object sweeping past the lens) can be reported as a cut; that only restarts
the smoothing window, which is harmless.

Checked on real footage (``../shared/data/clips``, not shipped): the two black-and-white films
with cuts have 7 hard cuts, all found on the right frame, with no false cut (camera shake in a
moving truck, blast effects); a third, static one gives none. The bounded memory (#4) changed
none of these decisions. On 28 colour clips turned grey
(unlabelled), two cuts fire, both at moments of extreme motion blur (judged by eye).

Usage::

    frames = annotate(frames)                   # stage: sets Frame.scene_start, yields in order
    starts = detect_cuts(lumas)                 # planning pass: [0, 131, 402, ...]
    first = warmup_start(17280)                 # decode from here to decide 17280 on as a full run
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
        max_gap: frames after which the reference expires (about a second): the first
            informative frame after a longer blank stretch starts a new shot.
        segment: frames per segment of the restart grid (see "Bounded memory" in the module
            docstring); a tracker warms up for one segment before it decides the next, so
            ``segment`` must exceed ``max_gap``, ``min_scene_len`` and ``window``.
    """

    threshold: float = 0.4
    adaptive_ratio: float = 3.0
    window: int = 12
    min_scene_len: int = 8
    lookahead: int = 2
    min_contrast: float = 0.02
    width: int = 80
    max_gap: int = 24
    segment: int = 48

    def __post_init__(self) -> None:
        checks = (
            ("threshold", 0.0 < self.threshold <= 2.0, "in (0, 2]"),
            ("adaptive_ratio", self.adaptive_ratio >= 1.0, ">= 1"),
            ("window", self.window >= 1, ">= 1"),
            ("min_scene_len", self.min_scene_len >= 1, ">= 1"),
            ("lookahead", 0 <= self.lookahead <= 8, "in [0, 8]"),
            ("min_contrast", 0.0 <= self.min_contrast < 0.5, "in [0, 0.5)"),
            ("width", 16 <= self.width <= 512, "in [16, 512]"),
            ("max_gap", self.max_gap >= 1, ">= 1"),
            (
                "segment",
                self.segment > max(self.max_gap, self.min_scene_len, self.window),
                "greater than max_gap, min_scene_len and window",
            ),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(
                    f"scene-cut {name} must be {rule}, got {getattr(self, name)!r}; "
                    "use the defaults of SceneCutParams unless you have measured otherwise"
                )

    @property
    def memory(self) -> int:
        """Frames of warm-up after which any stream decides like the whole film (``2 * segment``)."""
        return 2 * self.segment


def warmup_start(index: int, params: SceneCutParams | None = None) -> int:
    """The latest frame a stream may start at and still decide frames ``>= index`` as a whole run.

    It is the start of the segment before ``index``'s (see "Bounded memory" in the module
    docstring), so it lies between ``segment`` and ``2 * segment - 1`` frames before ``index``
    (or is 0).

    Args:
        index: the first frame whose decision must equal that of the whole film.
        params: detector settings (defaults: :class:`SceneCutParams`).

    Returns:
        A frame index ``<= index``.
    """
    seg = (params or SceneCutParams()).segment
    return max(0, (index // seg - 1) * seg)


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


class _Tracker:
    """The state of one restart of the detector: reference, score history, last cut.

    Positions count the frames this tracker was fed (not source indices, which may skip).
    """

    def __init__(self, params: SceneCutParams) -> None:
        self.params = params
        self.ref: _Thumb | None = None
        # Position of the reference; -1 (just before the first frame) while there has been
        # none, so a blank stretch at the start counts towards ``max_gap`` like any other.
        self.ref_pos = -1
        self.history: deque[float] = deque(maxlen=params.window)
        self.count = 0
        self.last_cut_pos = 0

    def decide(self, cur: _Thumb, ahead: Iterable[_Thumb]) -> bool:
        """Does ``cur`` start a shot? ``ahead``: the next ``lookahead`` frames."""
        p = self.params
        pos = self.count
        self.count += 1
        if pos == 0:
            if cur.informative:
                self.ref, self.ref_pos = cur, pos
            return True
        if not cur.informative:
            # Blank frame: keep the reference so the next visible frame is compared with the
            # last thing the audience saw (fade to black and back into the same shot = no cut).
            return False
        long_gap = pos - self.ref_pos - 1 > p.max_gap  # frames since the reference
        if long_gap:
            # The reference has expired (a long blank stretch, or a long run of rejected
            # flashes): nothing links this frame to the old shot any more, and the old shot's
            # motion says nothing about the new one's.
            self.ref = None
            self.history.clear()
        ref = self.ref
        if ref is None:
            # Nothing to compare with: a new shot after a long blank stretch; after a short
            # blank leader the shot that started on the stream's first frame goes on.
            self.ref, self.ref_pos = cur, pos
            return long_gap and self._cut(pos, cur.index)
        score = _distance(cur, ref)
        baseline = max(float(np.mean(self.history)) if self.history else 0.0, BASELINE_FLOOR)
        cut_level = max(p.threshold, p.adaptive_ratio * baseline)
        gap = pos - self.ref_pos > 1
        if gap:
            cut_level = max(cut_level, GAP_THRESHOLD)
        if score < cut_level or _shifted_distance(cur, ref) < min(
            cut_level, SHIFT_EXPLAINS * score
        ):
            # Below the level, or a big change explained by a global shift (a pan, a jolt, gate
            # weave). The raw score goes into the history either way, so sustained motion
            # raises the adaptive baseline; a score across a gap says nothing about motion.
            if not gap:
                self.history.append(score)
            self.ref, self.ref_pos = cur, pos
            return False
        for nxt in ahead:
            if nxt.informative and _distance(nxt, ref) < max(cut_level, FLASH_RETURN * score):
                logger.debug(
                    "scene cut: frame %d rejected as a flash (score %.3f)", cur.index, score
                )
                return False  # the reference stays: frames after the flash compare with it
        self.ref, self.ref_pos = cur, pos
        if self._cut(pos, cur.index):
            logger.debug(
                "scene cut at frame %d (score %.3f, level %.3f)", cur.index, score, cut_level
            )
            return True
        return False

    def _cut(self, pos: int, index: int) -> bool:
        if pos - self.last_cut_pos < self.params.min_scene_len:
            logger.debug("scene cut: frame %d too close to the previous cut", index)
            return False
        self.last_cut_pos = pos
        return True


class SceneCutDetector:
    """Streaming hard-cut detector for black-and-white film.

    Feed frames in decode order with :meth:`process_frame`; decisions come back ``lookahead``
    frames later (the delay that lets a one- or two-frame flash be told from a cut), and
    :meth:`flush` decides the last ones at end of stream. :meth:`__call__` / :meth:`annotate`
    wrap this as a pipeline stage. The first frame always starts a shot.

    Frame indices place frames on the restart grid (see "Bounded memory" in the module
    docstring): pass each frame's index in the film, consecutive, so that a stream that starts
    mid-film decides like the whole film after :func:`warmup_start`.

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

    @property
    def memory(self) -> int:
        """Frames after which a stream's decisions no longer depend on where it started."""
        return self.params.memory

    def reset(self) -> None:
        """Forget all state; the next frame starts a shot."""
        self._pending: deque[_Thumb] = deque()
        # [deciding the current segment, warming up for the next one]
        self._trackers: list[_Tracker] = []
        self._segment: int | None = None

    def process_frame(self, index: int, luma: np.ndarray) -> list[int]:
        """Feed the next frame.

        Args:
            index: the frame's index in the film (returned as-is in the result; must be unique
                and, for the bounded-memory guarantee, consecutive).
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
        cur = self._pending.popleft()
        segment = cur.index // self.params.segment
        if self._segment is None:
            # Stream start: both trackers start here (the first frame starts a shot).
            self._trackers = [_Tracker(self.params), _Tracker(self.params)]
        elif segment != self._segment:
            # The tracker that warmed up over the last segment takes over; a fresh one starts
            # warming up for the next. Only the grid decides when, never the footage.
            self._trackers = [self._trackers[1], _Tracker(self.params)]
        self._segment = segment
        decided = [t.decide(cur, self._pending) for t in self._trackers]
        return [cur.index] if decided[0] else []

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
