"""Measure chroma smoothing on synthetic shots: flicker, accuracy, ghosting, cuts and speed.

Not a test: a study whose table is copied into :mod:`filmcolor.temporal.smoothing`'s docstring
to justify the defaults. Everything is generated in memory, nothing is written.

The synthetic film: each shot is a grain-textured grey background with a few discs of other
greys moving across it, with whole-frame exposure flicker and grain. The fake "model" a/b is a
fixed colour per disc over a smooth per-shot background colour field (the truth) plus per-frame
jitter (a global offset, a smooth random field and per-pixel noise) that stands for a
colouriser's flicker. Several shots are joined with hard cuts.

With ``--clips DIR`` it also runs on real colour clips (first 80 frames of each ``*.mp4``): their
own Lab a/b at 64x48 is the truth, the same jitter is added, and the luma is the clip's BT.601
luma. That checks the luma weights against real motion (no cuts there, no timing).

Methods compared: no smoothing; a causal EMA reset at cuts (a few alphas, plain and with a
luma-adaptive alpha); :class:`~filmcolor.temporal.smoothing.ChromaSmoother` (a few radii and
luma sigmas, ``inf`` = plain triangular window); and a window whose neighbours are first warped
to the centre frame with OpenCV DIS optical flow.

Usage::

    python pipelines/temporal_study.py            # synthetic table (about 10 s on 2 cores)
    python pipelines/temporal_study.py --quick    # fewer shots, for a smoke run
    python pipelines/temporal_study.py --clips ../shared/data/clips/colour   # + real, ~1 min
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from filmcolor.frames import Frame
from filmcolor.temporal.smoothing import ChromaSmoother

logger = logging.getLogger("filmcolor")

SCALE: int = 4
"""Full-resolution luma is this many times the a/b resolution (a/b is at render resolution)."""


@dataclass
class Clip:
    """A synthetic clip: frames with jittered a/b, and what a perfect smoother would output."""

    frames: list[Frame]
    truth: list[np.ndarray]  # jitter-free a/b per frame, (2, h, w)
    edges: list[np.ndarray]  # bool (h, w) per frame: pixels near a moving object's boundary
    cuts: list[int]  # indices of frames with scene_start=True, 0 excluded


def _smooth_field(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std random field with a Gaussian correlation length of ``sigma`` px."""
    f = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
    return (f - f.mean()) / (f.std() + 1e-6)


def jitter(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colouriser's per-frame error, shape ``(2, h, w)``, in Lab units."""
    return (
        rng.normal(0, 4, size=(2, 1, 1))  # the whole frame's cast shifts
        + 3 * np.stack([_smooth_field(rng, h, w, 6.0) for _ in "ab"])  # blotches
        + rng.normal(0, 2, size=(2, h, w))  # pixel noise
    )


def make_clip(
    rng: np.random.Generator, ab_size: tuple[int, int], shots: int = 3, length: int = 40
) -> Clip:
    """Build ``shots`` shots of ``length`` frames at a/b size ``ab_size = (w, h)``.

    Args:
        rng: random generator (the study is reproducible from its seed).
        ab_size: a/b width and height; luma is :data:`SCALE` times larger.
        shots: number of shots, joined by hard cuts.
        length: frames per shot.

    Returns:
        The :class:`Clip`.
    """
    w, h = ab_size
    big_w, big_h = w * SCALE, h * SCALE
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
    frames: list[Frame] = []
    truth: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    cuts: list[int] = []
    for s in range(shots):
        if s:
            cuts.append(len(frames))
        background = 0.5 + 0.12 * _smooth_field(rng, big_h, big_w, 6.0 * SCALE)
        bg_ab = np.stack([rng.uniform(-30, 30) + 8 * _smooth_field(rng, h, w, 8.0) for _ in "ab"])
        discs = []
        for _ in range(3):
            discs.append(
                {
                    "x": rng.uniform(0.2, 0.8) * big_w,
                    "y": rng.uniform(0.2, 0.8) * big_h,
                    "r": rng.uniform(0.08, 0.16) * big_w,
                    # Object speed: 0.5-2 a/b pixels per frame, i.e. a brisk walk across frame.
                    "vx": rng.uniform(0.5, 2.0) * SCALE * rng.choice([-1, 1]),
                    "vy": rng.uniform(-0.5, 0.5) * SCALE,
                    "grey": rng.choice([0.15, 0.3, 0.7, 0.85]),
                    "ab": rng.uniform(-60, 60, size=2),
                }
            )
        for t in range(length):
            luma = background.copy()
            ab = bg_ab.copy()
            edge = np.zeros((h, w), dtype=bool)
            for d in discs:
                inside = ((xx - d["x"] - d["vx"] * t) ** 2 + (yy - d["y"] - d["vy"] * t) ** 2) < d[
                    "r"
                ] ** 2
                luma[inside] = d["grey"]
                cover = cv2.resize(inside.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
                ab = ab * (1 - cover) + d["ab"][:, None, None] * cover
                ring = cv2.dilate(cover, np.ones((5, 5), np.uint8)) - cv2.erode(
                    cover, np.ones((5, 5), np.uint8)
                )
                edge |= ring > 0.05
            gain = 1 + rng.uniform(-0.12, 0.12)  # exposure flicker
            luma = luma * gain + 0.03 * rng.standard_normal(luma.shape).astype(np.float32)
            frames.append(
                Frame(
                    index=len(frames),
                    luma=np.clip(luma, 0, 1).astype(np.float32),
                    scene_start=t == 0,
                    ab=(ab + jitter(rng, h, w)).astype(np.float32),
                )
            )
            truth.append(ab.astype(np.float32))
            edges.append(edge)
    return Clip(frames, truth, edges, cuts)


def _copy(frames: list[Frame]) -> list[Frame]:
    return [
        Frame(index=f.index, luma=f.luma, scene_start=f.scene_start, ab=f.ab.copy()) for f in frames
    ]


def ema(
    alpha: float, adaptive: bool = False, reset: bool = True
) -> Callable[[Iterator[Frame]], Iterator[Frame]]:
    """A causal EMA: ``out_t = a * ab_t + (1 - a) * out_{t-1}``, restarted at cuts.

    With ``adaptive``, ``a`` rises per pixel towards 1 where the (exposure-matched) luma changed
    (REFERENCE's suggestion against ghosting), with the same 0.08 luma scale as the window.
    ``reset=False`` ignores cuts: it shows what the "err@cut" column catches.
    """

    def stage(frames: Iterator[Frame]) -> Iterator[Frame]:
        prev_ab: np.ndarray | None = None
        prev_l: np.ndarray | None = None
        for f in frames:
            assert f.ab is not None
            h, w = f.ab.shape[1:]
            small = cv2.resize(f.luma, (w, h), interpolation=cv2.INTER_AREA)
            if (reset and f.scene_start) or prev_ab is None:
                out = f.ab.copy()
            else:
                a: float | np.ndarray = alpha
                if adaptive:
                    assert prev_l is not None
                    gain = np.clip(np.median(small) / np.median(prev_l), 2 / 3, 1.5)
                    change = 1 - np.exp(-((small - gain * prev_l) ** 2) / (2 * 0.08**2))
                    a = alpha + (1 - alpha) * change
                out = a * f.ab + (1 - a) * prev_ab
            prev_ab, prev_l = out, small
            f.ab = out.astype(np.float32)
            yield f

    return stage


def flow_window(radius: int, sigma: float) -> Callable[[Iterator[Frame]], Iterator[Frame]]:
    """Centred window whose neighbours are warped to the centre with DIS flow on a/b-size luma.

    Whole-list implementation (fine for a study); cuts are respected like ChromaSmoother.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def stage(frames: Iterator[Frame]) -> Iterator[Frame]:
        fr = list(frames)
        raw = [f.ab.copy() for f in fr]
        shot = np.cumsum([f.scene_start for f in fr])
        h, w = raw[0].shape[1:]
        small = [cv2.resize(f.luma, (w, h), interpolation=cv2.INTER_AREA) for f in fr]
        u8 = [np.clip(s * 255, 0, 255).astype(np.uint8) for s in small]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        for t, f in enumerate(fr):
            num = np.zeros_like(raw[t])
            den = np.zeros((h, w), np.float32)
            for k in range(-radius, radius + 1):
                j = t + k
                if j < 0 or j >= len(fr) or shot[j] != shot[t]:
                    continue
                tri = (radius + 1 - abs(k)) / (radius + 1)
                if k == 0:
                    wgt = np.full((h, w), tri, np.float32)
                    ab_j = raw[j]
                else:
                    flow = dis.calc(u8[t], u8[j], None)
                    mx, my = gx + flow[..., 0], gy + flow[..., 1]
                    lj = cv2.remap(
                        small[j], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                    )
                    ab_j = np.stack(
                        [
                            cv2.remap(c, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                            for c in raw[j]
                        ]
                    )
                    lj = lj * np.clip(np.median(small[t]) / np.median(lj), 2 / 3, 1.5)
                    wgt = tri * np.exp(-((lj - small[t]) ** 2) / (2 * sigma**2))
                num += wgt * ab_j
                den += wgt
            f.ab = num / den
            yield f

    return stage


@dataclass
class Row:
    """One line of the result table."""

    name: str
    flicker: float
    error: float
    edge: float
    cut: float
    cut_error: float
    ms64: float
    ms128: float


def evaluate(clip: Clip, out: list[Frame]) -> tuple[float, float, float, float, float]:
    """Flicker inside shots, error vs truth, error at moving edges, |delta ab| across cuts, and
    error on the two frames either side of each cut (smearing across a cut shows up there)."""
    starts = {0, *clip.cuts}
    flick = [
        np.abs(out[t].ab - out[t - 1].ab).mean() for t in range(1, len(out)) if t not in starts
    ]
    err = [np.abs(o.ab - g).mean() for o, g in zip(out, clip.truth)]
    # Pool edge pixels over all frames: a disc may leave the picture, leaving a frame no edges.
    edge_sum = sum(
        float(np.abs(o.ab - g)[:, e].sum()) for o, g, e in zip(out, clip.truth, clip.edges)
    )
    edge_n = sum(2 * int(e.sum()) for e in clip.edges)
    cut = [np.abs(out[c].ab - out[c - 1].ab).mean() for c in clip.cuts] or [np.nan]
    near = [err[t] for c in clip.cuts for t in (c - 1, c)] or [np.nan]
    return (
        float(np.mean(flick)),
        float(np.mean(err)),
        edge_sum / max(edge_n, 1),
        float(np.mean(cut)),
        float(np.mean(near)),
    )


Stage = Callable[[Iterator[Frame]], Iterator[Frame]]


def methods() -> list[tuple[str, Stage]]:
    """Every smoothing variant the study compares, by display name."""
    out: list[tuple[str, Stage]] = [("none", ChromaSmoother(radius=0))]
    out += [(f"EMA a={a}", ema(a)) for a in (0.5, 0.3, 0.2)]
    out += [("EMA a=0.3 no reset at cuts", ema(0.3, reset=False))]
    out += [(f"EMA a={a} luma-adaptive", ema(a, adaptive=True)) for a in (0.3, 0.2)]
    out += [(f"window R={r} plain", ChromaSmoother(r, float("inf"))) for r in (2, 4)]
    out += [(f"window R=4 s={sigma}", ChromaSmoother(4, sigma)) for sigma in (0.04, 0.08, 0.16)]
    out += [(f"window R={r} s=0.08", ChromaSmoother(r, 0.08)) for r in (1, 2, 3, 6, 8)]
    out += [(f"window R={r} s=0.08 DIS-flow", flow_window(r, 0.08)) for r in (2, 4)]
    return out


def run(quick: bool) -> list[Row]:
    """Run every method on clips at 64x48 (metrics + speed) and 128x96 (speed).

    Args:
        quick: fewer and shorter shots.

    Returns:
        One :class:`Row` per method.
    """
    shots, length = (2, 20) if quick else (4, 40)
    clip64 = make_clip(np.random.default_rng(0), (64, 48), shots, length)
    clip128 = make_clip(np.random.default_rng(1), (128, 96), 2, 20 if quick else 30)
    rows = []
    for name, stage in methods():
        frames = _copy(clip64.frames)
        t0 = time.perf_counter()
        out = list(stage(iter(frames)))
        ms64 = 1000 * (time.perf_counter() - t0) / len(out)
        frames = _copy(clip128.frames)
        t0 = time.perf_counter()
        n = sum(1 for _ in stage(iter(frames)))
        ms128 = 1000 * (time.perf_counter() - t0) / n
        rows.append(Row(name, *evaluate(clip64, out), ms64, ms128))
        logger.info("%s done", name)
    return rows


def load_real_clip(path: Path, rng: np.random.Generator, max_frames: int = 80) -> Clip:
    """Frames of a real colour clip with jittered a/b; the truth is the clip's own a/b.

    "edges" here are the pixels whose true a/b changed by more than 3 since the previous frame
    (where real motion is), the analogue of the synthetic discs' rims.
    """
    import av  # only this mode decodes video
    import torch

    from filmcolor.color.space import rgb_to_lab, rgb_to_luma

    # One thread: these tensors are tiny, and with a busy second core torch's thread pool turns
    # 0.3 s of colour conversion into 20 s of spinning (measured).
    torch.set_num_threads(1)
    w, h = 64 * SCALE, 48 * SCALE
    frames: list[Frame] = []
    truth: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for i, vf in enumerate(container.decode(video=0)):
            if i >= max_frames:
                break
            rgb = vf.reformat(width=w, height=h, format="rgb24").to_ndarray()
            x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
            luma = rgb_to_luma(x)[0].numpy()
            ab = rgb_to_lab(x)[1:].numpy().transpose(1, 2, 0)
            ab = cv2.resize(ab, (64, 48), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
            frames.append(
                Frame(
                    index=i,
                    luma=luma.astype(np.float32),
                    scene_start=i == 0,
                    ab=(ab + jitter(rng, 48, 64)).astype(np.float32),
                )
            )
            truth.append(ab.astype(np.float32))
    edges = [np.zeros((48, 64), bool)]
    edges += [np.abs(b - a).max(0) > 3 for a, b in pairwise(truth)]
    return Clip(frames, truth, edges, [])


def run_real(folder: Path) -> list[tuple[str, float, float, float]]:
    """Flicker, error and error where things move, averaged over the clips in ``folder``.

    Args:
        folder: a directory of ``*.mp4`` colour clips.

    Returns:
        ``(method, flicker, error, moving_error)`` per method.
    """
    paths = sorted(folder.glob("*.mp4"))
    if not paths:
        raise SystemExit(f"no *.mp4 in {folder}: point --clips at a folder of colour clips")
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for n, path in enumerate(paths):
        clip = load_real_clip(path, np.random.default_rng(n))
        for name, stage in methods():
            out = list(stage(iter(_copy(clip.frames))))
            flick, err, edge, _, _ = evaluate(clip, out)
            scores.setdefault(name, []).append((flick, err, edge))
        logger.info("%s done", path.name)
    return [(name, *np.mean(v, axis=0).tolist()) for name, v in scores.items()]


def format_table(rows: list[Row], truth_flicker: float, truth_cut: float) -> str:
    """Fixed-width table (the form pasted into the smoothing module docstring)."""
    header = (
        f"{'method':<28} {'flicker':>7} {'error':>6} {'edge':>6} {'cut':>6} {'err@cut':>7} "
        f"{'ms@64x48':>8} {'ms@128x96':>9}"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"{r.name:<28} {r.flicker:7.2f} {r.error:6.2f} {r.edge:6.2f} {r.cut:6.1f} "
            f"{r.cut_error:7.2f} "
            f"{r.ms64:8.2f} {r.ms128:9.2f}"
        )
    lines.append(
        f"{'(jitter-free truth)':<28} {truth_flicker:7.2f} {0:6.2f} {0:6.2f} {truth_cut:6.1f} "
        f"{0:7.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: print the table to stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter shots")
    parser.add_argument(
        "--clips", type=Path, help="also measure on the colour clips in this folder"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(1)  # timings per frame on one core, comparable across machines
    rows = run(args.quick)
    clip = make_clip(np.random.default_rng(0), (64, 48), *((2, 20) if args.quick else (4, 40)))
    truth = [Frame(index=f.index, luma=f.luma, ab=g) for f, g in zip(clip.frames, clip.truth)]
    truth_flicker, _, _, truth_cut, _ = evaluate(clip, truth)
    sys.stdout.write(format_table(rows, truth_flicker, truth_cut) + "\n")
    if args.clips is not None:
        sys.stdout.write(f"\nreal clips in {args.clips} (flicker, error, error where moving):\n")
        for name, flick, err, moving in run_real(args.clips):
            sys.stdout.write(f"{name:<28} {flick:7.2f} {err:6.2f} {moving:6.2f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
