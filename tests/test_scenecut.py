"""Scene-cut detector on synthetic black-and-white footage with old-film artefacts (CPU, fast)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from filmcolor.errors import ConfigError
from filmcolor.frames import Frame
from filmcolor.temporal.scenecut import (
    SceneCutDetector,
    SceneCutParams,
    annotate,
    detect_cuts,
    warmup_start,
)

H, W = 120, 160


def texture(rng: np.random.Generator, h: int = H, w: int = W) -> np.ndarray:
    """A random grey picture: smooth shapes plus finer detail, mean 0.5, std 0.15."""
    coarse = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 10)
    fine = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2)
    t = coarse / coarse.std() + 0.3 * fine / fine.std()
    return (0.5 + 0.15 * (t - t.mean()) / t.std()).astype(np.float32)


def make_shot(
    rng: np.random.Generator,
    n: int,
    *,
    flicker: float = 0.15,
    grain: float = 0.04,
    pan: float = 0.0,
    speed: float = 2.0,
) -> list[np.ndarray]:
    """``n`` frames of one shot: a textured background, two moving discs, optional pan (px per
    frame), whole-frame exposure flicker (gain in 1 +- ``flicker``) and Gaussian grain."""
    pad = int(abs(pan) * n) + 1
    bg = texture(rng, H, W + 2 * pad)
    yy, xx = np.mgrid[0:H, 0:W]
    discs = [
        (
            rng.uniform(30, W - 30),
            rng.uniform(30, H - 30),
            rng.uniform(10, 20),
            rng.uniform(0.1, 0.9),
        )
        for _ in range(2)
    ]
    vel = [rng.uniform(-speed, speed, size=2) for _ in discs]
    out = []
    for i in range(n):
        off = pad + round(pan * i)
        f = bg[:, off : off + W].copy()
        for (x, y, r, v), (vx, vy) in zip(discs, vel):
            f[(xx - x - vx * i) ** 2 + (yy - y - vy * i) ** 2 < r * r] = v
        f = f * (1 + rng.uniform(-flicker, flicker)) + grain * rng.standard_normal(f.shape)
        out.append(np.clip(f, 0, 1).astype(np.float32))
    return out


def fade(frames: list[np.ndarray], gains: np.ndarray) -> list[np.ndarray]:
    return [(f * g).astype(np.float32) for f, g in zip(frames, gains)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_cuts_detected_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [20, 15, 25, 18, 12]
    seq = [f for n in lengths for f in make_shot(rng, n)]
    assert detect_cuts(seq) == [0, 20, 35, 60, 78]


def test_hard_cut_at_every_resolution() -> None:
    rng = np.random.default_rng(3)
    seq = make_shot(rng, 12) + make_shot(rng, 12)
    big = [cv2.resize(f, (4 * W, 4 * H), interpolation=cv2.INTER_LINEAR) for f in seq]
    assert detect_cuts(seq) == detect_cuts(big) == [0, 12]


def test_no_cut_from_strong_exposure_flicker() -> None:
    # Worst case: the gain swings between the extremes of +-15 % on every frame.
    rng = np.random.default_rng(4)
    seq = make_shot(rng, 40, flicker=0.0)
    seq = [np.clip(f * (0.85 if i % 2 else 1.15), 0, 1) for i, f in enumerate(seq)]
    assert detect_cuts(seq) == [0]


def test_no_cut_from_grain_dust_and_scratches() -> None:
    rng = np.random.default_rng(5)
    seq = make_shot(rng, 40, grain=0.1)
    for f in seq:
        # Dust: a few dark and bright specks, new on every frame; a wandering vertical scratch.
        ys, xs = rng.integers(0, H, 30), rng.integers(0, W, 30)
        f[ys, xs] = rng.choice([0.0, 1.0], size=30)
        x = int(rng.integers(10, W - 10))
        f[:, x : x + 2] = 0.95
    assert detect_cuts(seq) == [0]


@pytest.mark.parametrize(
    "flash",
    [
        lambda f: np.ones_like(f),  # a clear white frame
        lambda f: np.clip(f * 3.0, 0, 1),  # a burnt, overexposed frame
        lambda f: np.clip(f + np.where(np.arange(W) < W // 2, 0.6, 0.0), 0, 1),  # half burnt
    ],
    ids=["white", "overexposed", "half-burnt"],
)
def test_no_cut_from_a_one_frame_flash(flash: Callable[[np.ndarray], np.ndarray]) -> None:
    rng = np.random.default_rng(6)
    seq = make_shot(rng, 30)
    seq[15] = flash(seq[15]).astype(np.float32)
    assert detect_cuts(seq) == [0]


def test_no_cut_from_a_two_frame_flash() -> None:
    rng = np.random.default_rng(7)
    seq = make_shot(rng, 30)
    seq[12] = np.clip(seq[12] * 3.0, 0, 1)
    seq[13] = np.ones_like(seq[13])
    assert detect_cuts(seq) == [0]


def test_flash_just_before_a_cut_gives_one_cut() -> None:
    rng = np.random.default_rng(8)
    seq = make_shot(rng, 20) + make_shot(rng, 20)
    seq[19] = np.ones_like(seq[19])  # splices often carry a burnt frame
    cuts = detect_cuts(seq)
    assert len(cuts) == 2 and cuts[1] in (19, 20)


def test_no_cut_from_fade_to_black_and_back_in_one_shot() -> None:
    rng = np.random.default_rng(9)
    seq = make_shot(rng, 50)
    gains = np.concatenate([np.ones(10), np.linspace(1, 0, 12), np.zeros(5), np.linspace(0, 1, 12)])
    gains = np.concatenate([gains, np.ones(50 - len(gains))])
    assert detect_cuts(fade(seq, gains)) == [0]


def test_fade_to_black_into_a_new_shot_gives_one_cut_in_the_fade_in() -> None:
    rng = np.random.default_rng(10)
    out_gains = np.concatenate([np.ones(15), np.linspace(1, 0, 10), np.zeros(3)])
    in_gains = np.concatenate([np.zeros(2), np.linspace(0, 1, 10), np.ones(15)])
    a = fade(make_shot(rng, len(out_gains)), out_gains)
    b = fade(make_shot(rng, len(in_gains)), in_gains)
    cuts = detect_cuts(a + b)
    start_b = len(a)
    # Documented behaviour: one cut, on the first frame of the new shot with visible contrast.
    assert len(cuts) == 2 and start_b <= cuts[1] <= start_b + 6


BLACK = np.zeros((H, W), np.float32)


@pytest.mark.parametrize("same_shot", [False, True], ids=["new-shot", "same-shot"])
def test_a_long_black_stretch_starts_a_new_shot(same_shot: bool) -> None:
    # The reference expires after max_gap blank frames (#4): what comes after a long black
    # stretch starts a shot, even the same picture (the detector's memory is bounded, and a
    # smoother restart after a second of black is harmless).
    rng = np.random.default_rng(20)
    a = make_shot(rng, 60)
    b = a[30:] if same_shot else make_shot(rng, 30)
    seq = a[:30] + [BLACK] * 100 + b
    assert detect_cuts(seq) == [0, 130]
    gap = SceneCutParams().max_gap
    assert detect_cuts(a[:30] + [BLACK] * gap + b) == ([0] if same_shot else [0, 30 + gap])


def test_a_long_black_leader_then_the_film() -> None:
    rng = np.random.default_rng(21)
    assert detect_cuts([BLACK] * 40 + make_shot(rng, 20)) == [0, 40]


def _footage_with_blanks(seed: int, n: int) -> list[np.ndarray]:
    """Random shots (some fading out or in), separated by nothing, a flash, or short and long
    blank stretches."""
    rng = np.random.default_rng(seed)
    seq: list[np.ndarray] = []
    while len(seq) < n:
        shot = make_shot(rng, int(rng.integers(4, 70)), speed=float(rng.uniform(0.5, 6)))
        if rng.random() < 0.3:
            k = min(len(shot), 8)
            shot[-k:] = fade(shot[-k:], np.linspace(1, 0, k))
        if rng.random() < 0.2:
            shot[len(shot) // 2] = np.ones((H, W), np.float32)
        seq += shot
        gap = rng.choice([0, 0, 2, 10, 23, 25, 40, 130])
        seq += [BLACK] * int(gap)
    return seq[:n]


def _decisions(frames: list[np.ndarray], first: int) -> list[int]:
    det = SceneCutDetector()
    cuts: list[int] = []
    for i in range(first, len(frames)):
        cuts += det.process_frame(i, frames[i])
    return cuts + det.flush()


@pytest.mark.parametrize("seed", [30, 31])
@pytest.mark.slow
def test_bounded_memory_late_start_decides_like_the_full_stream(seed: int) -> None:
    # The invariant previews rely on (#4): a stream started `memory` frames before frame i, or
    # at warmup_start(i), takes the whole stream's decisions from i on.
    frames = _footage_with_blanks(seed, 700)
    full = _decisions(frames, 0)
    memory = SceneCutDetector().memory
    assert memory == 2 * SceneCutParams().segment
    starts = range(1, len(frames) - memory - 40, 11)  # many land in long blank stretches
    compared = 0
    for s in starts:
        late = _decisions(frames, s)
        assert late[0] == s  # the first frame of any stream starts a shot
        i = s + memory
        assert [c for c in late if c >= i] == [c for c in full if c >= i], f"started at {s}"
        compared += len([c for c in full if c >= i])
        j = s + 5
        aligned = _decisions(frames, warmup_start(j))
        assert [c for c in aligned if c >= j] == [c for c in full if c >= j], f"from {j}"
    assert compared > 100  # the footage has cuts, including after long blank stretches


def test_warmup_start_is_on_the_segment_grid() -> None:
    seg = SceneCutParams().segment
    assert warmup_start(0) == warmup_start(seg - 1) == 0
    assert warmup_start(2 * seg) == seg and warmup_start(3 * seg - 1) == seg
    small = SceneCutParams(segment=30)
    assert warmup_start(59, small) == 0 and warmup_start(60, small) == 30


@pytest.mark.parametrize("pan", [0.5, 4.0], ids=["slow-pan", "fast-pan"])
def test_no_cut_from_a_pan(pan: float) -> None:
    rng = np.random.default_rng(11)
    assert detect_cuts(make_shot(rng, 40, pan=pan)) == [0]


def test_no_cut_from_gate_weave() -> None:
    rng = np.random.default_rng(12)
    base = texture(rng, H + 20, W + 20)
    seq = []
    for _ in range(40):
        dy, dx = rng.integers(0, 7, size=2)  # the frame jumps a few pixels in the gate
        seq.append(base[dy : dy + H, dx : dx + W] + 0.04 * rng.standard_normal((H, W)))
    assert detect_cuts(seq) == [0]


@pytest.mark.parametrize("jump", [12, 36])
def test_no_cut_from_a_camera_jolt(jump: int) -> None:
    # A static shot whose picture jumps sideways once and stays there (a bumped camera, a
    # mis-registered splice): the global-shift check must explain it.
    rng = np.random.default_rng(18)
    base = texture(rng, H, W + 60)
    seq = []
    for i in range(30):
        x = 5 + (jump if i >= 15 else 0)
        seq.append(base[:, x : x + W] + 0.04 * rng.standard_normal((H, W)))
    assert detect_cuts(seq) == [0]


def test_min_scene_len() -> None:
    rng = np.random.default_rng(13)
    seq = make_shot(rng, 10) + make_shot(rng, 3) + make_shot(rng, 12)
    assert detect_cuts(seq, SceneCutParams(min_scene_len=8)) == [0, 10]
    assert detect_cuts(seq, SceneCutParams(min_scene_len=2)) == [0, 10, 13]


def test_blank_start_marks_only_the_first_frame() -> None:
    rng = np.random.default_rng(14)
    seq = [np.zeros((H, W), np.float32)] * 5 + make_shot(rng, 20)
    assert detect_cuts(seq) == [0]


def test_process_frame_delay_and_flush() -> None:
    rng = np.random.default_rng(15)
    seq = make_shot(rng, 10) + make_shot(rng, 10)
    det = SceneCutDetector(SceneCutParams(lookahead=0))
    immediate = [bool(det.process_frame(i, f)) for i, f in enumerate(seq)]
    assert det.flush() == []
    assert [i for i, c in enumerate(immediate) if c] == [0, 10]

    det = SceneCutDetector()  # lookahead 2: a decision arrives two frames later
    got = [det.process_frame(100 + i, f) for i, f in enumerate(seq)]
    assert got[0] == got[1] == [] and got[2] == [100] and got[12] == [110]
    assert det.flush() == []


def test_annotate_marks_first_frame_and_keeps_order_and_count() -> None:
    rng = np.random.default_rng(16)
    lumas = make_shot(rng, 14) + make_shot(rng, 14)
    frames = [Frame(index=50 + i, luma=y, scene_start=True) for i, y in enumerate(lumas)]
    pulled = 0
    max_held = 0

    def source() -> Iterator[Frame]:
        nonlocal pulled
        for f in frames:
            pulled += 1
            yield f

    out = []
    for f in annotate(source()):
        max_held = max(max_held, pulled - len(out))
        out.append(f)
    assert [f is g for f, g in zip(out, frames)] == [True] * len(frames)
    assert [f.index for f in out if f.scene_start] == [50, 64]
    assert max_held <= SceneCutParams().lookahead + 1  # bounded buffer, no whole-film list


def test_annotate_empty_and_short_streams() -> None:
    assert list(annotate(iter([]))) == []
    one = Frame(index=0, luma=np.full((H, W), 0.5, np.float32))
    assert [f.scene_start for f in annotate([one])] == [True]
    assert detect_cuts([]) == []


def test_detector_is_reusable() -> None:
    rng = np.random.default_rng(17)
    frames = [Frame(index=i, luma=y) for i, y in enumerate(make_shot(rng, 6))]
    det = SceneCutDetector()
    first = [f.scene_start for f in det(frames)]
    second = [f.scene_start for f in det(frames)]
    assert first == second == [True] + [False] * 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"adaptive_ratio": 0.5},
        {"window": 0},
        {"min_scene_len": 0},
        {"lookahead": -1},
        {"min_contrast": 0.6},
        {"width": 4},
        {"max_gap": 0},
        {"segment": 24},  # must exceed max_gap
        {"segment": 12, "max_gap": 6},  # and window
    ],
)
def test_params_are_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SceneCutParams(**kwargs)


def test_luma_must_be_2d() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        SceneCutDetector().process_frame(0, np.zeros((4, 4, 3), np.float32))
