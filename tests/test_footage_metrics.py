"""Still-pixel flicker and edge error (:mod:`filmcolor.metrics.video`, #13), on synthetic frames.

Covered: :class:`StillFlickerAccumulator` / :func:`still_flicker` (a static clip scores 0, a known
a/b jitter scores its size, pairs with too few still pixels are skipped, stillness comes from the
guide and not from the frame, the batch function equals the accumulator, errors, ``reset``);
:func:`edge_mask` (a vertical lightness step marks exactly the columns within ``EDGE_RADIUS`` of
it, a flat image marks nothing); :func:`edge_error` (0 for a perfect prediction, larger than the
overall CIEDE2000 when colour bleeds across an edge, ``nan`` without a strong edge).
CPU only, no data files.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from filmcolor.color.space import lab_to_rgb
from filmcolor.metrics.image import ciede2000, srgb_to_lab
from filmcolor.metrics.video import (
    CANNY_THRESHOLDS,
    EDGE_RADIUS,
    STILL_DELTA_L,
    STILL_MIN_FRACTION,
    StillFlickerAccumulator,
    edge_error,
    edge_mask,
    still_flicker,
)

H, W = 24, 32


def lab_frame(L, a, b, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """Float32 sRGB ``(H, W, 3)`` in [0, 1] of a Lab image given per-channel scalars or planes."""
    lab = np.stack([np.broadcast_to(np.asarray(c, np.float64), shape) for c in (L, a, b)])
    rgb = lab_to_rgb(torch.from_numpy(lab.astype(np.float32)))
    return rgb.permute(1, 2, 0).numpy().astype(np.float32)


def grey(value: float | np.ndarray, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float32), shape).astype(np.float32)


def smooth_texture(rng: np.random.Generator, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """A smooth random RGB texture in [0, 1], float32."""
    t = rng.standard_normal((*shape, 3)).astype(np.float32)
    t = cv2.GaussianBlur(t, (0, 0), 3)
    t = 0.5 + 0.2 * (t - t.mean()) / t.std()
    return np.clip(t, 0.0, 1.0).astype(np.float32)


# -- constants ---------------------------------------------------------------------------------


def test_constants_have_the_documented_values() -> None:
    assert STILL_DELTA_L == 1.0
    assert STILL_MIN_FRACTION == 0.05
    assert CANNY_THRESHOLDS == (100, 200)
    assert EDGE_RADIUS == 2


# -- still-pixel flicker -----------------------------------------------------------------------


def test_static_colour_clip_has_zero_flicker() -> None:
    frame = smooth_texture(np.random.default_rng(0))
    frames = [frame.copy() for _ in range(6)]
    assert still_flicker(frames) == 0.0
    acc = StillFlickerAccumulator()
    for f in frames:
        acc.update(f)
    assert acc.result() == 0.0
    assert acc.pairs == 5 and acc.skipped == 0
    # The same with a guide (the clip's own grey), and with uint8 frames.
    guide = [f @ np.array([0.299, 0.587, 0.114], np.float32) for f in frames]
    assert still_flicker(frames, guide) == 0.0
    u8 = [np.rint(f * 255).astype(np.uint8) for f in frames]
    assert still_flicker(u8) == 0.0


def test_known_ab_jitter_gives_its_size() -> None:
    # L = 50 everywhere, a alternates 10 / 14, b = 0: |delta a| + |delta b| = 4 on every pair.
    frames = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0) for t in range(8)]
    guide = [grey(0.5) for _ in frames]
    acc = StillFlickerAccumulator()
    values = [acc.update(f, guide=g) for f, g in zip(frames, guide)]
    assert values[0] is None
    assert all(v == pytest.approx(4.0, abs=0.3) for v in values[1:])
    assert acc.pairs == 7 and acc.skipped == 0
    assert acc.result() == pytest.approx(4.0, abs=0.3)
    assert still_flicker(frames, guide) == pytest.approx(4.0, abs=0.3)


def test_known_jitter_in_a_and_b_adds_up() -> None:
    # a alternates 10 / 13 and b alternates -5 / -1: 3 + 4 = 7 per pair.
    frames = [
        lab_frame(60.0, 10.0 if t % 2 == 0 else 13.0, -5.0 if t % 2 == 0 else -1.0)
        for t in range(5)
    ]
    guide = [grey(0.5) for _ in frames]
    assert still_flicker(frames, guide) == pytest.approx(7.0, abs=0.3)


def test_pairs_without_still_pixels_are_skipped() -> None:
    # The guide changes lightness everywhere (0.2 <-> 0.8): no pair can be judged.
    frames = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0) for t in range(5)]
    guide = [grey(0.2 if t % 2 == 0 else 0.8) for t in range(5)]
    acc = StillFlickerAccumulator()
    for f, g in zip(frames, guide):
        assert acc.update(f, guide=g) is None
    assert acc.pairs == 0
    assert acc.skipped == 4
    assert math.isnan(acc.result())
    assert math.isnan(still_flicker(frames, guide))


def _partly_still_guide(still_cols: int, t: int, shape: tuple[int, int]) -> np.ndarray:
    """Guide whose first ``still_cols`` columns stay at 0.5 and whose rest alternate 0.2 / 0.8."""
    g = grey(0.2 if t % 2 == 0 else 0.8, shape).copy()
    g[:, :still_cols] = 0.5
    return g


def test_pair_is_scored_over_its_still_pixels_only() -> None:
    # 10 % of the pixels are still: the first 4 of 40 columns.
    shape, still_cols = (20, 40), 4
    guide = [_partly_still_guide(still_cols, t, shape) for t in range(4)]

    # a/b change only where the guide moves: the still pixels see no change -> 0.
    moving_only = []
    for t in range(4):
        a = np.full(shape, 10.0 if t % 2 == 0 else 30.0)
        a[:, :still_cols] = 20.0
        moving_only.append(lab_frame(50.0, a, 0.0, shape))
    acc = StillFlickerAccumulator()
    for f, g in zip(moving_only, guide):
        acc.update(f, guide=g)
    assert acc.pairs == 3 and acc.skipped == 0
    assert acc.result() == pytest.approx(0.0, abs=1e-3)

    # a/b change only where the guide is still: the full change is scored, not diluted by the
    # 90 % of moving pixels whose colour stays put.
    still_only = []
    for t in range(4):
        a = np.full(shape, 20.0)
        a[:, :still_cols] = 10.0 if t % 2 == 0 else 16.0
        still_only.append(lab_frame(50.0, a, 0.0, shape))
    acc = StillFlickerAccumulator()
    for f, g in zip(still_only, guide):
        acc.update(f, guide=g)
    assert acc.pairs == 3
    assert acc.result() == pytest.approx(6.0, abs=0.3)


def test_min_fraction_boundary() -> None:
    # 400 pixels; 5 % is 20. 19 still pixels -> skipped, 20 -> scored.
    shape = (20, 20)
    frames = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0, shape) for t in range(2)]

    def run(n_still: int) -> StillFlickerAccumulator:
        acc = StillFlickerAccumulator()
        for t, f in enumerate(frames):
            g = grey(0.2 if t % 2 == 0 else 0.8, shape).copy()
            g.reshape(-1)[:n_still] = 0.5
            acc.update(f, guide=g)
        return acc

    below, at = run(19), run(20)
    assert (below.pairs, below.skipped) == (0, 1)
    assert math.isnan(below.result())
    assert (at.pairs, at.skipped) == (1, 0)
    assert at.result() == pytest.approx(4.0, abs=0.3)


def test_the_guide_decides_stillness_not_the_frame() -> None:
    # The frames' own lightness jumps 30 <-> 70 (as a colouriser's output may not keep L) while
    # the grey guide stays constant: with the guide every pixel is still and the a jitter counts.
    frames = [
        lab_frame(30.0 if t % 2 == 0 else 70.0, 10.0 if t % 2 == 0 else 14.0, 0.0)
        for t in range(6)
    ]
    guide = [grey(0.5) for _ in frames]
    assert still_flicker(frames, guide) == pytest.approx(4.0, abs=0.3)
    # Without a guide the frames' own lightness moves everywhere: nothing to score.
    acc = StillFlickerAccumulator()
    for f in frames:
        acc.update(f)
    assert acc.pairs == 0 and acc.skipped == 5
    assert math.isnan(acc.result())
    # Conversely: constant frames with a guide that moves everywhere are not scored at all.
    constant = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0) for t in range(6)]
    moving = [grey(0.3 if t % 2 == 0 else 0.7) for t in range(6)]
    assert math.isnan(still_flicker(constant, moving))


def test_rgb_guide_is_accepted() -> None:
    frames = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0) for t in range(4)]
    guide = [np.repeat(grey(0.5)[..., None], 3, axis=2) for _ in frames]
    assert still_flicker(frames, guide) == pytest.approx(4.0, abs=0.3)


def test_batch_function_equals_the_accumulator() -> None:
    rng = np.random.default_rng(7)
    base = smooth_texture(rng)
    frames, guide = [], []
    for t in range(7):
        f = np.clip(base + rng.normal(0, 0.02, size=(1, 1, 3)), 0, 1).astype(np.float32)
        frames.append(f)
        g = (base @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)
        if t == 3:
            g = np.clip(g + 0.3, 0, 1)  # a flash: the pairs around it are skipped
        guide.append(g)
    acc = StillFlickerAccumulator()
    for f, g in zip(frames, guide):
        acc.update(f, guide=g)
    batch = still_flicker(frames, guide)
    assert batch == acc.result()
    assert acc.skipped == 2 and acc.pairs == 4
    assert batch > 0.0
    # Without a guide as well.
    acc = StillFlickerAccumulator()
    for f in frames:
        acc.update(f)
    assert still_flicker(frames) == acc.result()


def test_still_flicker_errors() -> None:
    f = lab_frame(50.0, 10.0, 0.0)
    with pytest.raises(ValueError):
        still_flicker([f])
    with pytest.raises(ValueError):
        still_flicker([])
    with pytest.raises(ValueError):
        still_flicker([f, f, f], [grey(0.5), grey(0.5)])
    acc = StillFlickerAccumulator()
    with pytest.raises(ValueError):
        acc.update(f, guide=grey(0.5, (H + 1, W)))
    with pytest.raises(ValueError):
        StillFlickerAccumulator(still_delta_l=0.0)
    with pytest.raises(ValueError):
        StillFlickerAccumulator(min_fraction=1.5)


def test_reset_clears_everything() -> None:
    frames = [lab_frame(50.0, 10.0 if t % 2 == 0 else 14.0, 0.0) for t in range(4)]
    acc = StillFlickerAccumulator()
    for f in frames:
        acc.update(f, guide=grey(0.5))
    acc.update(frames[0], guide=grey(0.9))  # a skipped pair
    assert acc.pairs == 3 and acc.skipped == 1
    acc.reset()
    assert acc.pairs == 0 and acc.skipped == 0
    assert math.isnan(acc.result())
    # The first frame after a reset has no previous frame: no pair across the reset.
    assert acc.update(frames[1], guide=grey(0.5)) is None
    assert acc.pairs == 0
    # And the running sum restarted: a static pair now gives exactly 0.
    assert acc.update(frames[1], guide=grey(0.5)) == 0.0
    assert acc.result() == 0.0


# -- edge mask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [13, 20, 21, 24])
def test_edge_mask_marks_the_columns_around_a_step(step: int) -> None:
    lightness = np.full((30, 40), 20.0)
    lightness[:, step:] = 80.0
    mask = edge_mask(lightness)
    assert mask.shape == lightness.shape and mask.dtype == bool
    cols = np.nonzero(mask.any(axis=0))[0]
    # Canny puts the edge on the last dark column, the first bright one, or both; the mask is
    # that edge dilated by EDGE_RADIUS, over the full height of the image.
    r = EDGE_RADIUS
    allowed = [
        list(range(step - 1 - r, step + r)),  # edge on column step - 1
        list(range(step - r, step + r + 1)),  # edge on column step
        list(range(step - 1 - r, step + r + 1)),  # both
    ]
    assert cols.tolist() in allowed
    assert mask[:, cols].all()
    assert mask[:, step - 1].all() and mask[:, step].all()
    far = np.abs(np.arange(40) - (step - 0.5)) > r + 1
    assert not mask[:, far].any()


def test_edge_mask_radius_zero_and_wider() -> None:
    lightness = np.full((30, 40), 20.0)
    lightness[:, 20:] = 80.0
    thin = edge_mask(lightness, radius=0)
    assert 1 <= len(np.nonzero(thin.any(axis=0))[0]) <= 2
    wide = edge_mask(lightness, radius=5)
    assert wide.sum() > edge_mask(lightness).sum() > thin.sum()


def test_edge_mask_is_empty_on_flat_and_weak_images() -> None:
    assert not edge_mask(np.full((30, 40), 50.0)).any()
    # A gentle gradient (0 -> 100 over 40 px) and a weak step are no strong edges.
    assert not edge_mask(np.tile(np.linspace(0.0, 100.0, 40), (30, 1))).any()
    weak = np.full((30, 40), 50.0)
    weak[:, 20:] = 55.0
    assert not edge_mask(weak).any()


# -- edge error --------------------------------------------------------------------------------


def _two_halves(spill: int = 0, shape: tuple[int, int] = (32, 48)) -> np.ndarray:
    """Left half red-ish (L 40), right half blue-ish (L 70); ``spill`` columns of the right
    half's a/b bleed into the left half, the lightness staying the truth's."""
    _h, w = shape
    mid = w // 2
    L = np.full(shape, 40.0)
    L[:, mid:] = 70.0
    a = np.full(shape, 45.0)
    b = np.full(shape, 25.0)
    a[:, mid - spill:] = 5.0
    b[:, mid - spill:] = -40.0
    return lab_frame(L, a, b, shape)


def test_edge_error_is_zero_for_a_perfect_prediction() -> None:
    truth = _two_halves()
    assert edge_error(truth, truth) == 0.0
    assert edge_error(truth.copy(), truth) == 0.0


def test_edge_error_concentrates_bleeding() -> None:
    truth, pred = _two_halves(), _two_halves(spill=3)
    overall = ciede2000(pred, truth)
    near_edges = edge_error(pred, truth)
    assert overall > 0.0
    # Only 3 of 48 columns are wrong, and all of them lie within EDGE_RADIUS + 1 of the edge.
    assert near_edges > 2.0 * overall
    # The value is the mean over the edge mask of the truth's lightness.
    lab_t, lab_p = srgb_to_lab(truth), srgb_to_lab(pred)
    mask = edge_mask(lab_t[..., 0])
    from filmcolor.metrics.image import delta_e_ciede2000

    expected = delta_e_ciede2000(lab_p[mask], lab_t[mask]).mean()
    assert near_edges == pytest.approx(float(expected), rel=1e-5)
    # uint8 input gives about the same.
    u8 = lambda x: np.rint(x * 255).astype(np.uint8)
    assert edge_error(u8(pred), u8(truth)) == pytest.approx(near_edges, rel=0.05)


def test_edge_error_is_nan_without_a_strong_edge() -> None:
    shape = (32, 48)
    flat = lab_frame(50.0, 20.0, 10.0, shape)
    assert math.isnan(edge_error(lab_frame(50.0, 25.0, 10.0, shape), flat))
    # An iso-luminant colour edge is no luminance edge either.
    a = np.full(shape, -20.0)
    a[:, 24:] = 40.0
    iso = lab_frame(50.0, a, 0.0, shape)
    assert math.isnan(edge_error(flat, iso))


def test_edge_error_checks_shapes() -> None:
    with pytest.raises(ValueError):
        edge_error(_two_halves(shape=(32, 48)), _two_halves(shape=(32, 50)))
