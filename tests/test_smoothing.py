"""Chroma smoother: flicker reduction, cuts, streaming, the fixed-window property (CPU, fast)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise

import cv2
import numpy as np
import pytest

from filmcolor.errors import ConfigError
from filmcolor.frames import Frame
from filmcolor.temporal.smoothing import MAX_RADIUS, ChromaSmoother

AB_H, AB_W = 12, 16
"""a/b render resolution used by the tests; luma is 4x larger, as in the pipeline."""


def texture(rng: np.random.Generator, h: int = 4 * AB_H, w: int = 4 * AB_W) -> np.ndarray:
    t = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 4)
    return (0.5 + 0.15 * (t - t.mean()) / t.std()).astype(np.float32)


def jittered_shot(
    rng: np.random.Generator,
    n: int,
    colour: tuple[float, float],
    *,
    start: int = 0,
    flicker: float = 0.0,
    jitter: float = 6.0,
) -> list[Frame]:
    """A static shot whose "model" a/b is ``colour`` plus per-frame flicker (a global cast and
    pixel noise); luma gets an exposure gain in 1 +- ``flicker``."""
    luma = texture(rng)
    frames = []
    for i in range(n):
        ab = np.array(colour, np.float32)[:, None, None] + np.zeros((2, AB_H, AB_W), np.float32)
        ab += rng.normal(0, jitter, size=(2, 1, 1)) + rng.normal(0, jitter / 2, size=ab.shape)
        gain = 1 + rng.uniform(-flicker, flicker)
        frames.append(
            Frame(
                index=start + i,
                luma=np.clip(luma * gain, 0, 1).astype(np.float32),
                pts=1000 * (start + i),
                scene_start=i == 0,
                ab=ab.astype(np.float32),
                extra={"tag": start + i},
            )
        )
    return frames


def clone(frames: Iterable[Frame]) -> list[Frame]:
    """Deep enough copies that a run cannot see another run's outputs."""
    return [
        Frame(
            index=f.index,
            luma=f.luma,
            pts=f.pts,
            time_base=f.time_base,
            scene_start=f.scene_start,
            ab=None if f.ab is None else f.ab.copy(),
            extra=dict(f.extra),
        )
        for f in frames
    ]


def flicker(frames: list[Frame]) -> float:
    """Mean frame-to-frame |delta ab| (frames of one shot)."""
    return float(np.mean([np.abs(b.ab - a.ab).mean() for a, b in pairwise(frames)]))


def smooth(frames: list[Frame], smoother: ChromaSmoother) -> list[Frame]:
    return list(smoother(iter(clone(frames))))


@pytest.mark.parametrize("exposure_flicker", [0.0, 0.15])
def test_reduces_flicker_within_a_shot(exposure_flicker: float) -> None:
    # With +-15 % exposure flicker too: the luma weights must not read it as motion.
    frames = jittered_shot(np.random.default_rng(0), 40, (20.0, -10.0), flicker=exposure_flicker)
    out = smooth(frames, ChromaSmoother.from_strength(0.5))
    ratio = flicker(out) / flicker(frames)
    assert ratio < 0.35, ratio
    truth = np.array([20.0, -10.0], np.float32)[:, None, None]
    err_in = np.mean([np.abs(f.ab - truth).mean() for f in frames])
    err_out = np.mean([np.abs(f.ab - truth).mean() for f in out])
    assert err_out < 0.6 * err_in


def test_never_smooths_across_a_cut() -> None:
    rng = np.random.default_rng(1)
    a = jittered_shot(rng, 13, (60.0, 40.0))
    b = jittered_shot(rng, 11, (-60.0, -40.0), start=13)
    smoother = ChromaSmoother(radius=4)
    together = smooth(a + b, smoother)
    separately = smooth(a, ChromaSmoother(radius=4)) + smooth(b, ChromaSmoother(radius=4))
    for x, y in zip(together, separately, strict=True):
        assert np.array_equal(x.ab, y.ab), x.index
    # And the jump at the cut is the raw one, not a blend.
    assert np.abs(together[13].ab.mean() - together[12].ab.mean()) > 80


def test_streaming_keeps_count_order_identity_and_other_fields() -> None:
    frames = jittered_shot(np.random.default_rng(2), 9, (5.0, 5.0))
    frames += jittered_shot(np.random.default_rng(3), 7, (9.0, 1.0), start=9)
    frames[3].ab = None  # a frame the model skipped passes through
    before = [(f.index, f.pts, f.scene_start, f.luma, f.extra["tag"]) for f in frames]
    raw = [None if f.ab is None else f.ab for f in frames]
    smoother = ChromaSmoother(radius=3)
    pulled = 0
    max_held = 0

    def source() -> Iterator[Frame]:
        nonlocal pulled
        for f in frames:
            pulled += 1
            yield f

    out = []
    for f in smoother(source()):
        max_held = max(max_held, pulled - len(out))
        out.append(f)
    assert len(out) == len(frames) and all(o is f for o, f in zip(out, frames))
    assert [(f.index, f.pts, f.scene_start, f.luma, f.extra["tag"]) for f in out] == before
    assert max_held <= 2 * smoother.radius + 1
    assert out[3].ab is None
    for f, r in zip(out, raw):
        if r is not None:
            assert f.ab is not r and f.ab.dtype == np.float32 and f.ab.shape == r.shape


@pytest.mark.parametrize(("a", "b"), [(10, 25), (0, 7), (2, 30), (33, 40), (15, 16)])
def test_fixed_window_property_chunks_match_a_whole_run(a: int, b: int) -> None:
    # One long shot, plus a cut at 28 so some chunks contain a cut in their context.
    rng = np.random.default_rng(4)
    frames = jittered_shot(rng, 28, (10.0, 30.0)) + jittered_shot(rng, 12, (-5.0, 0.0), start=28)
    r = 3
    whole = smooth(frames, ChromaSmoother(radius=r))
    lo, hi = max(0, a - r), min(len(frames), b + r)
    chunk = clone(frames[lo:hi])
    chunk[0].scene_start = False  # a chunk that starts mid-shot has no cut mark there
    got = list(ChromaSmoother(radius=r)(iter(chunk)))
    for f in got[a - lo : b - lo]:
        assert np.array_equal(f.ab, whole[f.index].ab), f.index


def test_strength_zero_is_identity() -> None:
    frames = jittered_shot(np.random.default_rng(5), 6, (1.0, 2.0))
    out = smooth(frames, ChromaSmoother.from_strength(0.0))
    for f, o in zip(frames, out):
        assert np.array_equal(o.ab, f.ab)


def test_from_strength_mapping_and_validation() -> None:
    assert ChromaSmoother.from_strength(0.5).radius == 4
    assert ChromaSmoother.from_strength(1.0).radius == MAX_RADIUS
    assert ChromaSmoother.from_strength(0.0).lookahead == 0
    assert ChromaSmoother.from_strength().context == ChromaSmoother.from_strength(0.5).radius
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError):
            ChromaSmoother.from_strength(bad)
    assert ChromaSmoother(radius=np.int64(2)).radius == 2
    for bad_radius in (-1, 2.5, True):
        with pytest.raises(ConfigError):
            ChromaSmoother(radius=bad_radius)
    with pytest.raises(ConfigError):
        ChromaSmoother(radius=2, luma_sigma=0.0)


def test_moving_object_does_not_ghost() -> None:
    # A bright red disc moves 1.5 a/b pixels per frame over a dark blue-ish background and leaves
    # the picture at frame 11 (where matching exposure by mean/std used to erase its contrast);
    # a/b is exact (no jitter), so any deviation from the truth is colour dragged from other frames.
    n, scale = 21, 4
    h, w = AB_H * scale, AB_W * scale
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(6)
    frames, truth = [], []
    for i in range(n):
        inside = (xx - (8 + 1.5 * scale * i)) ** 2 + (yy - h / 2) ** 2 < (2.5 * scale) ** 2
        luma = np.where(inside, 0.85, 0.2).astype(np.float32)
        luma = luma + 0.02 * rng.standard_normal(luma.shape).astype(np.float32)
        cover = cv2.resize(inside.astype(np.float32), (AB_W, AB_H), interpolation=cv2.INTER_AREA)
        ab = np.stack([60 * cover - 10 * (1 - cover), 50 * cover - 30 * (1 - cover)])
        frames.append(Frame(index=i, luma=luma, scene_start=i == 0, ab=ab.astype(np.float32)))
        truth.append(ab.astype(np.float32))
    ghost = [np.abs(f.ab - t).max() for f, t in zip(smooth(frames, ChromaSmoother(4)), truth)]
    plain = [
        np.abs(f.ab - t).max() for f, t in zip(smooth(frames, ChromaSmoother(4, np.inf)), truth)
    ]
    assert max(plain) > 30  # the test can see a ghost: a plain window smears the disc
    # Residual error is confined to the disc's anti-aliased rim (mixed pixels), far below that.
    assert max(ghost) < 12, max(ghost)


def test_shots_shorter_than_the_window() -> None:
    rng = np.random.default_rng(7)
    one = jittered_shot(rng, 1, (40.0, 0.0))
    two = jittered_shot(rng, 2, (-40.0, 0.0), start=1)
    three = jittered_shot(rng, 3, (0.0, 40.0), start=3)
    out = smooth(one + two + three, ChromaSmoother(radius=5))
    assert [f.index for f in out] == list(range(6))
    assert np.array_equal(out[0].ab, one[0].ab)  # a one-frame shot has nothing to average
    expect = smooth(two, ChromaSmoother(radius=5)) + smooth(three, ChromaSmoother(radius=5))
    for o, e in zip(out[1:], expect):
        assert np.array_equal(o.ab, e.ab)


def test_ab_size_may_change_at_a_cut() -> None:
    rng = np.random.default_rng(8)
    a = jittered_shot(rng, 5, (10.0, 10.0))
    b = jittered_shot(rng, 5, (20.0, 20.0), start=5)
    for f in b:
        f.ab = np.repeat(np.repeat(f.ab, 2, axis=1), 2, axis=2)  # (2, 24, 32)
    out = smooth(a + b, ChromaSmoother(radius=2))
    assert [f.ab.shape for f in out] == [(2, AB_H, AB_W)] * 5 + [(2, 2 * AB_H, 2 * AB_W)] * 5


def test_empty_stream_and_bad_ab() -> None:
    assert list(ChromaSmoother(radius=2)(iter([]))) == []
    bad = Frame(index=0, luma=np.zeros((8, 8), np.float32), ab=np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        list(ChromaSmoother(radius=1)([bad]))
