"""Temporal-consistency metrics for colourised video: CDC, warp error, still-pixel flicker, and
the edge error that tracks colour bleeding across object borders.

CDC and warp error need no ground truth, so they also work on real black-and-white films. Each
comes as a batch function over a clip and as a streaming accumulator (``update(frame, guide=None)`` then
``result()``) that keeps only the few frames the metric looks back on, so a whole film can be
scored in the pull-based pipeline without holding it in memory. Frames are RGB ``(H, W, 3)``,
``uint8`` or float in [0, 1]. A clip should be one shot: neither metric means anything across a
scene cut, so score shots separately (``reset()`` an accumulator at a cut).

**CDC** (colour distribution consistency, as in ColorMNet's evaluation code): for each channel,
the Jensen-Shannon divergence (natural log) between the normalised 256-bin histograms of frames
t and t + d, averaged over t, then averaged over the gaps d = 1, 2, 4; the clip's CDC is the mean
over channels. Lower is more consistent.

**Warp error** (Lai et al., ECCV 2018): the masked mean squared RGB difference between frame t
and frame t + 1 warped back to t along the optical flow, averaged over t. Lower is better.
filmcolor's version differs from the paper's evaluation script in three documented ways:

* Flow comes from OpenCV's DIS (preset ``"medium"`` by default), not FlowNet2, and is computed on
  the luma of the *guide* frames: pass the grey source frames, so that colour flicker in the
  output cannot bend the flow that is supposed to expose it. Without a guide the luma of the
  frames themselves is used.
* Pixels whose flow leaves the image are masked out too (the script samples the clamped border).
* The squared difference is summed over R, G and B (``reduction="sum"``). Lai et al.'s script
  divides by the mask summed over three channels, i.e. it averages over channels; pass
  ``reduction="mean"`` for numbers on that scale (one third of ``"sum"``).

The occlusion mask keeps Lai et al.'s thresholds (see :func:`valid_flow_mask`).

**Still-pixel flicker** (#13) is what a viewer sees as shimmer on walls, skies and faces: the mean
``|delta a| + |delta b|`` (CIE Lab) between consecutive frames over the pixels whose lightness L
changed by less than :data:`STILL_DELTA_L` between them; a frame pair with fewer than
:data:`STILL_MIN_FRACTION` of its pixels still is skipped (a pan or a cut has no still pixels to
judge). Which pixels are still is decided on a *guide* (the grey source frames) when one is
given, so a colourised clip and its truth are scored on the same pixels; report the ratio of ours
to the truth's.

**Edge error** (#13): the mean CIEDE2000 to the truth over the pixels within
:data:`EDGE_RADIUS` px of the luminance's strong edges (Canny on L, thresholds
:data:`CANNY_THRESHOLDS`): low-resolution chroma upsampled without regard to the edges bleeds
there (halos around heads against the sky).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Literal

import cv2
import numpy as np

from filmcolor.color.space import BT601
from filmcolor.metrics.image import _check_rgb, _float01, _uint8, _unit_range

logger = logging.getLogger("filmcolor")

CDC_GAPS: tuple[int, ...] = (1, 2, 4)
"""Frame gaps over which CDC compares histograms; a clip needs ``max(CDC_GAPS) + 1`` frames."""

DIS_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
"""OpenCV DIS optical-flow presets by name. ``"medium"`` is the default for warp error: the metric
is only as good as its flow, and on a CPU medium still costs well under the colouriser."""

MIN_FLOW_SIZE: int = 12
"""Smallest frame height and width DIS accepts (its coarsest pyramid level needs a patch)."""

WarpReduction = Literal["sum", "mean"]

STILL_DELTA_L: float = 1.0
"""A pixel is still between two frames when its Lab lightness changed by less than this."""

STILL_MIN_FRACTION: float = 0.05
"""Frame pairs with fewer still pixels than this fraction are left out of the flicker."""

CANNY_THRESHOLDS: tuple[int, int] = (100, 200)
"""Canny's hysteresis thresholds on 8-bit lightness (L * 255 / 100): only strong edges count."""

EDGE_RADIUS: int = 2
"""Pixels within this many pixels (chessboard distance) of an edge count as edge pixels."""

# --------------------------------------------------------------------------------------------
# CDC


def _histograms(frame: np.ndarray) -> np.ndarray:
    """Per-channel 256-bin histograms of an RGB frame, each normalised by H * W: ``(3, 256)``."""
    u8 = _uint8(frame, "frame")
    counts = np.stack([np.bincount(u8[..., c].ravel(), minlength=256) for c in range(3)])
    return counts.astype(np.float64) / (u8.shape[0] * u8.shape[1])


def _js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis of two histogram stacks."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        # Empty bins contribute 0 (the limit of a log a); where a > 0, m > 0 as well.
        safe = np.where(a > 0.0, a, 1.0)
        return np.where(a > 0.0, a * np.log(safe / np.where(m > 0.0, m, 1.0)), 0.0).sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def _cdc_per_channel(frames: Sequence[np.ndarray]) -> np.ndarray:
    need = max(CDC_GAPS) + 1
    if len(frames) < need:
        raise ValueError(f"CDC needs a clip of at least {need} frames, got {len(frames)}")
    hists = np.stack([_histograms(f) for f in frames])  # (T, 3, 256)
    per_gap = [_js_divergence(hists[:-d], hists[d:]).mean(axis=0) for d in CDC_GAPS]
    return np.mean(per_gap, axis=0)  # (3,): the 1/3 sum over gaps, per channel


def cdc(frames: Sequence[np.ndarray]) -> float:
    """Colour distribution consistency of one clip.

    Args:
        frames: the clip's RGB frames ``(H, W, 3)``, uint8 or float in [0, 1] (floats are
            rounded to 8-bit levels for the histograms); at least 5 frames.

    Returns:
        CDC: mean over channels of the gap-averaged (d = 1, 2, 4) mean JS divergence. 0 for a
        clip whose colour histograms never change.

    Raises:
        ValueError: the clip is shorter than 5 frames (the largest gap has no pair).
    """
    return float(_cdc_per_channel(frames).mean())


def cdc_clips(clips: Iterable[Sequence[np.ndarray]]) -> float:
    """CDC over a data set of clips: mean over channels of the mean over clips.

    Because both means are plain averages this equals the mean of :func:`cdc` over clips, which
    is how streaming callers can combine one :class:`CDCAccumulator` result per clip.

    Args:
        clips: clips as accepted by :func:`cdc`.

    Returns:
        The data-set CDC.
    """
    per_clip = [_cdc_per_channel(c) for c in clips]
    if not per_clip:
        raise ValueError("cdc_clips needs at least one clip")
    return float(np.mean(per_clip, axis=0).mean())


class CDCAccumulator:
    """Streaming CDC of one clip: keeps the histograms of the last 4 frames and running sums.

    Example:
        >>> acc = CDCAccumulator()
        >>> for frame in frames:  # doctest: +SKIP
        ...     acc.update(frame)
        >>> acc.result()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._recent: deque[np.ndarray] = deque(maxlen=max(CDC_GAPS))
        self._sums = np.zeros((len(CDC_GAPS), 3))
        self._counts = np.zeros(len(CDC_GAPS), dtype=np.int64)

    def reset(self) -> None:
        """Forget everything, e.g. at a scene cut."""
        self._recent.clear()
        self._sums[:] = 0.0
        self._counts[:] = 0

    def update(self, frame: np.ndarray, guide: np.ndarray | None = None) -> None:
        """Add the next frame of the clip.

        Args:
            frame: RGB frame ``(H, W, 3)``, uint8 or float in [0, 1].
            guide: ignored; accepted so that all temporal accumulators share one signature.
        """
        del guide  # CDC looks at the output colours only.
        h = _histograms(frame)
        for i, d in enumerate(CDC_GAPS):
            if len(self._recent) >= d:
                self._sums[i] += _js_divergence(self._recent[-d], h)
                self._counts[i] += 1
        self._recent.append(h)

    def result(self) -> float:
        """CDC of the frames seen so far; ``nan`` (with a warning) before the 5th frame."""
        if self._counts[-1] == 0:
            logger.warning("CDC is undefined for a clip shorter than %d frames", max(CDC_GAPS) + 1)
            return math.nan
        per_gap = self._sums / self._counts[:, None]
        return float(per_gap.mean(axis=0).mean())


# --------------------------------------------------------------------------------------------
# Warp error


def _luma_u8(img: np.ndarray, name: str) -> np.ndarray:
    """8-bit luma ``(H, W)`` of a grey ``(H, W)`` / ``(H, W, 1)`` or RGB ``(H, W, 3)`` image."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(img)}")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        if img.dtype == np.uint8:
            return np.ascontiguousarray(img)
        return np.rint(_unit_range(img, name) * 255.0).astype(np.uint8)
    _check_rgb(img, name)
    rgb = img.astype(np.float64) if img.dtype == np.uint8 else _float01(img, name) * 255.0
    luma = rgb @ np.asarray(BT601, dtype=np.float64)
    return np.rint(np.clip(luma, 0.0, 255.0)).astype(np.uint8)


def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear), i.e. warp frame t + 1 back onto frame t.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` float32 image (frame t + 1).
        flow: ``(H, W, 2)`` float32 flow from frame t to frame t + 1, (dx, dy) in pixels.

    Returns:
        The warped image, same shape as ``image``; samples outside are clamped to the border.
    """
    if flow.ndim != 3 or flow.shape[-1] != 2 or flow.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"flow must have a shape of (H, W, 2) matching the image. Got {flow.shape}"
        )
    gx, gy = _pixel_grid(*flow.shape[:2])
    map_x = gx + flow[..., 0].astype(np.float32)
    map_y = gy + flow[..., 1].astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def valid_flow_mask(
    flow_fw: np.ndarray, flow_bw: np.ndarray, mask_outside: bool = True
) -> np.ndarray:
    """Pixels of frame t whose flow to frame t + 1 is trustworthy (Lai et al.'s occlusion test).

    A pixel x is dropped when it fails the forward-backward check (Ruder et al.)::

        |F_fw(x) + F_bw(x + F_fw(x))|^2 > 0.01 (|F_fw(x)|^2 + |F_bw(x + F_fw(x))|^2) + 0.5

    or lies on a motion boundary of the t -> t + 1 flow::

        |grad F_fw,x|^2 + |grad F_fw,y|^2 > 0.01 |F_fw(x)|^2 + 0.002

    with forward differences for the gradient. The boundary test uses the flow anchored at frame
    t so that the mask lives on frame t's pixel grid; in Lai et al.'s script this is the flow
    passed as ``bw_flow``, because their occlusion function is called with the flows swapped.

    Args:
        flow_fw: ``(H, W, 2)`` flow from frame t to t + 1.
        flow_bw: ``(H, W, 2)`` flow from frame t + 1 to t.
        mask_outside: also drop pixels whose flow points outside the image (not in the paper;
            their colour in frame t + 1 is unknown).

    Returns:
        Boolean ``(H, W)``, True where the pixel counts (M_t = 1 - O_t).
    """
    if flow_fw.shape != flow_bw.shape or flow_fw.ndim != 3 or flow_fw.shape[-1] != 2:
        raise ValueError(
            f"flows must both have a shape of (H, W, 2). Got {flow_fw.shape}, {flow_bw.shape}"
        )
    fw = flow_fw.astype(np.float32, copy=False)
    bw_at_target = warp_backward(flow_bw.astype(np.float32, copy=False), fw)
    fb_sum = fw + bw_at_target
    mag_fw = (fw**2).sum(-1)
    occluded = (fb_sum**2).sum(-1) > 0.01 * (mag_fw + (bw_at_target**2).sum(-1)) + 0.5

    grad_sq = np.zeros(fw.shape[:2], dtype=np.float32)
    grad_sq[:, :-1] += ((fw[:, 1:] - fw[:, :-1]) ** 2).sum(-1)
    grad_sq[:-1, :] += ((fw[1:, :] - fw[:-1, :]) ** 2).sum(-1)
    boundary = grad_sq > 0.01 * mag_fw + 0.002

    invalid = occluded | boundary
    if mask_outside:
        h, w = fw.shape[:2]
        gx, gy = _pixel_grid(h, w)
        tx, ty = gx + fw[..., 0], gy + fw[..., 1]
        invalid |= (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    return ~invalid


class WarpErrorAccumulator:
    """Streaming warp error of one clip: keeps only the previous frame and its guide luma.

    Args:
        preset: DIS optical-flow preset, a key of :data:`DIS_PRESETS`.
        reduction: ``"sum"`` sums the squared error over R, G, B; ``"mean"`` averages it, the
            scale of Lai et al.'s published numbers.

    Example:
        >>> acc = WarpErrorAccumulator()
        >>> for colour, grey in zip(output_frames, source_frames):  # doctest: +SKIP
        ...     acc.update(colour, guide=grey)
        >>> acc.result()  # doctest: +SKIP
    """

    def __init__(self, preset: str = "medium", reduction: WarpReduction = "sum") -> None:
        if preset not in DIS_PRESETS:
            raise ValueError(f"preset must be one of {sorted(DIS_PRESETS)}, got {preset!r}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.preset = preset
        self.reduction: WarpReduction = reduction
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        self._prev: np.ndarray | None = None
        self._prev_luma: np.ndarray | None = None
        self._total = 0.0
        self._pairs = 0

    def reset(self) -> None:
        """Forget the previous frame and the running sum, e.g. at a scene cut."""
        self._prev = None
        self._prev_luma = None
        self._total = 0.0
        self._pairs = 0

    def update(self, frame: np.ndarray, guide: np.ndarray | None = None) -> float | None:
        """Add the next frame and score it against the previous one.

        Args:
            frame: RGB frame ``(H, W, 3)``, uint8 or float in [0, 1].
            guide: the frame the flow is computed on, normally the grey source frame: grey
                ``(H, W)`` / ``(H, W, 1)`` or RGB ``(H, W, 3)`` (its BT.601 luma is used), uint8
                or float in [0, 1], same H and W as ``frame``. Default: the luma of ``frame``.

        Returns:
            E_t for the pair (previous frame, this frame), or None for the first frame and for
            a pair in which every pixel is masked (such a pair is left out of the mean).
        """
        cur = _float01(frame, "frame").astype(np.float32)
        luma = _luma_u8(frame if guide is None else guide, "guide")
        if luma.shape != cur.shape[:2]:
            raise ValueError(f"guide must have the frame's size {cur.shape[:2]}, got {luma.shape}")
        if min(luma.shape) < MIN_FLOW_SIZE:
            raise ValueError(
                f"warp error needs frames of at least {MIN_FLOW_SIZE}x{MIN_FLOW_SIZE} pixels for "
                f"optical flow, got {luma.shape}"
            )
        prev, prev_luma = self._prev, self._prev_luma
        self._prev, self._prev_luma = cur, luma
        if prev is None or prev_luma is None:
            return None
        if prev.shape != cur.shape:
            raise ValueError(f"frame size changed within a clip: {prev.shape} -> {cur.shape}")

        flow_fw = self._dis.calc(prev_luma, luma, None)
        flow_bw = self._dis.calc(luma, prev_luma, None)
        mask = valid_flow_mask(flow_fw, flow_bw)
        n_valid = int(mask.sum())
        if n_valid == 0:
            logger.debug("warp error: every pixel of a frame pair is occluded; pair skipped")
            return None
        warped = warp_backward(cur, flow_fw)
        sq = ((prev.astype(np.float64) - warped) ** 2).sum(-1)
        err = float(sq[mask].sum()) / n_valid
        if self.reduction == "mean":
            err /= 3.0
        self._total += err
        self._pairs += 1
        return err

    def result(self) -> float:
        """Mean E_t over the scored pairs; ``nan`` (with a warning) when no pair was scored."""
        if self._pairs == 0:
            logger.warning("warp error is undefined: no scored frame pair")
            return math.nan
        return self._total / self._pairs


def warp_error(
    frames: Sequence[np.ndarray],
    guide: Sequence[np.ndarray] | None = None,
    preset: str = "medium",
    reduction: WarpReduction = "sum",
) -> float:
    """Warp error of one clip: mean over t of the masked squared difference between frame t and
    frame t + 1 warped onto it.

    Args:
        frames: the clip's RGB frames ``(H, W, 3)``, uint8 or float in [0, 1]; at least 2.
        guide: frames to compute the flow on, one per frame (normally the grey source frames);
            see :meth:`WarpErrorAccumulator.update`. Default: the luma of ``frames``.
        preset: DIS preset, a key of :data:`DIS_PRESETS`.
        reduction: ``"sum"`` or ``"mean"`` over R, G, B, see :class:`WarpErrorAccumulator`.

    Returns:
        Warp error on the [0, 1] intensity scale (papers often print it x 10^3).

    Raises:
        ValueError: fewer than 2 frames, or a guide of another length.
    """
    if len(frames) < 2:
        raise ValueError(f"warp error needs at least 2 frames, got {len(frames)}")
    if guide is not None and len(guide) != len(frames):
        raise ValueError(f"guide has {len(guide)} frames but the clip has {len(frames)}")
    acc = WarpErrorAccumulator(preset=preset, reduction=reduction)
    for t, frame in enumerate(frames):
        acc.update(frame, None if guide is None else guide[t])
    return acc.result()


# --------------------------------------------------------------------------------------------
# Still-pixel flicker and edge error


def _lab(img: np.ndarray, name: str) -> np.ndarray:
    """Lab ``(H, W, 3)`` float32 of an RGB image ``(H, W, 3)`` (uint8 or float in [0, 1])."""
    from filmcolor.metrics.image import srgb_to_lab

    _check_rgb(img, name)
    return srgb_to_lab(img).astype(np.float32)


def _lightness(img: np.ndarray, name: str) -> np.ndarray:
    """Lab L ``(H, W)`` of an RGB ``(H, W, 3)`` or grey ``(H, W)`` image (uint8 or float)."""
    if isinstance(img, np.ndarray) and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return _lab(img, name)[..., 0]


class StillFlickerAccumulator:
    """Streaming still-pixel flicker of one clip (see the module docstring).

    Keeps only the previous frame's a/b and lightness.

    Args:
        still_delta_l: the lightness change below which a pixel counts as still.
        min_fraction: pairs with a smaller still fraction are skipped.

    Example:
        >>> acc = StillFlickerAccumulator()
        >>> for colour, grey in zip(output_frames, source_frames):  # doctest: +SKIP
        ...     acc.update(colour, guide=grey)
        >>> acc.result()  # doctest: +SKIP
    """

    def __init__(
        self, still_delta_l: float = STILL_DELTA_L, min_fraction: float = STILL_MIN_FRACTION
    ) -> None:
        if not still_delta_l > 0:
            raise ValueError(f"still_delta_l must be > 0, got {still_delta_l!r}")
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction!r}")
        self.still_delta_l = float(still_delta_l)
        self.min_fraction = float(min_fraction)
        self._prev_ab: np.ndarray | None = None
        self._prev_l: np.ndarray | None = None
        self._total = 0.0
        self._pairs = 0
        self._skipped = 0

    def reset(self) -> None:
        """Forget the previous frame and the running sum, e.g. at a scene cut."""
        self._prev_ab = None
        self._prev_l = None
        self._total = 0.0
        self._pairs = 0
        self._skipped = 0

    @property
    def pairs(self) -> int:
        """Frame pairs scored so far."""
        return self._pairs

    @property
    def skipped(self) -> int:
        """Frame pairs left out because too few of their pixels were still."""
        return self._skipped

    def update(self, frame: np.ndarray, guide: np.ndarray | None = None) -> float | None:
        """Add the next frame and score it against the previous one.

        Args:
            frame: RGB frame ``(H, W, 3)``, uint8 or float in [0, 1].
            guide: the frame whose lightness decides which pixels are still, normally the grey
                source frame: grey ``(H, W)`` or RGB ``(H, W, 3)``, same H and W. Default: the
                lightness of ``frame`` itself.

        Returns:
            The pair's flicker, or None for the first frame and for a skipped pair.
        """
        lab = _lab(frame, "frame")
        ab = lab[..., 1:]
        lightness = lab[..., 0] if guide is None else _lightness(guide, "guide")
        if lightness.shape != ab.shape[:2]:
            raise ValueError(
                f"guide must have the frame's size {ab.shape[:2]}, got {lightness.shape}"
            )
        prev_ab, prev_l = self._prev_ab, self._prev_l
        self._prev_ab, self._prev_l = ab, lightness
        if prev_ab is None or prev_l is None:
            return None
        if prev_ab.shape != ab.shape:
            raise ValueError(f"frame size changed within a clip: {prev_ab.shape} -> {ab.shape}")
        still = np.abs(lightness - prev_l) < self.still_delta_l
        n = int(still.sum())
        if n == 0 or n < self.min_fraction * still.size:
            self._skipped += 1
            return None
        value = float(np.abs(ab - prev_ab).sum(-1)[still].mean(dtype=np.float64))
        self._total += value
        self._pairs += 1
        return value

    def result(self) -> float:
        """Mean flicker over the scored pairs; ``nan`` (with a warning) when none was scored."""
        if self._pairs == 0:
            logger.warning("still-pixel flicker is undefined: no frame pair with still pixels")
            return math.nan
        return self._total / self._pairs


def still_flicker(
    frames: Sequence[np.ndarray], guide: Sequence[np.ndarray] | None = None
) -> float:
    """Still-pixel flicker of one clip: mean ``|delta a| + |delta b|`` over still pixels.

    Args:
        frames: the clip's RGB frames ``(H, W, 3)``, uint8 or float in [0, 1]; at least 2.
        guide: one frame per frame deciding which pixels are still (normally the grey source);
            default: the lightness of ``frames``.

    Returns:
        The flicker in Lab units per frame (``nan`` if no pair had enough still pixels).

    Raises:
        ValueError: fewer than 2 frames, or a guide of another length.
    """
    if len(frames) < 2:
        raise ValueError(f"still-pixel flicker needs at least 2 frames, got {len(frames)}")
    if guide is not None and len(guide) != len(frames):
        raise ValueError(f"guide has {len(guide)} frames but the clip has {len(frames)}")
    acc = StillFlickerAccumulator()
    for t, frame in enumerate(frames):
        acc.update(frame, None if guide is None else guide[t])
    return acc.result()


def edge_mask(lightness: np.ndarray, radius: int = EDGE_RADIUS) -> np.ndarray:
    """Pixels within ``radius`` px of a strong edge of ``lightness`` (Lab L, ``(H, W)``).

    Returns:
        Boolean ``(H, W)``.
    """
    u8 = np.rint(np.clip(np.asarray(lightness, np.float64) * 2.55, 0, 255)).astype(np.uint8)
    edges = cv2.Canny(u8, *CANNY_THRESHOLDS)
    if radius > 0:
        edges = cv2.dilate(edges, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return edges > 0


def edge_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 between ``pred`` and ``truth`` near the truth's strong luminance edges.

    Args:
        pred: RGB ``(H, W, 3)``, uint8 or float in [0, 1].
        truth: RGB of the same shape; its lightness decides where the edges are.

    Returns:
        Mean ΔE00 over edge pixels; ``nan`` when the image has no strong edge.
    """
    from filmcolor.metrics.image import _check_pair, delta_e_ciede2000

    _check_pair(pred, truth)
    lab_t = _lab(truth, "truth")
    mask = edge_mask(lab_t[..., 0])
    if not mask.any():
        return math.nan
    lab_p = _lab(pred, "pred")
    return float(delta_e_ciede2000(lab_p[mask], lab_t[mask]).mean())
