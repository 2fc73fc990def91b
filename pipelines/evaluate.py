"""Evaluate a colouriser against ground truth: colour photos and clips are turned grey, coloured,
and compared with the originals. The grey baseline (the truth's lightness, no colour) is always
reported beside the model.

    python pipelines/evaluate.py                          # default model, dev photos + colour clips
    python pipelines/evaluate.py --photos ../shared/data/photos/dev --clips ../shared/data/clips/colour \
        --out runs/eval --render-size 256

Writes ``metrics.json``, ``metrics.md`` (Markdown table), ``photos.csv`` (every photo's metrics,
to find where the model fails) and ``sheet_photos.png`` (grey | ours | truth) into ``--out``; with ``--bw DIR`` also ``sheet_bw.png`` of genuine black-and-white films.
Metric definitions: :mod:`filmcolor.metrics` (CIEDE2000, PSNR, SSIM, colourfulness of Hasler &
Süsstrunk in its absolute-value variant, CDC, warp error with DIS flow, Fréchet distance on
EfficientNet-Lite0 features).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from filmcolor.color.space import BT601, linear_to_srgb, srgb_to_linear
from filmcolor.frames import Frame
from filmcolor.infer.colorize import Colorizer
from filmcolor.infer.merge import merge_rgb
from filmcolor.models import create_model
from filmcolor.models.registry import DEFAULT_MODEL
from filmcolor.training.data import IMAGE_EXTS, VIDEO_EXTS, is_holdout

logger = logging.getLogger("filmcolor")
ROOT = Path(__file__).resolve().parents[1]


def neutral_luma(rgb: np.ndarray) -> np.ndarray:
    """The grey value (0-1) with the same CIE lightness as each pixel of sRGB uint8 ``rgb``.

    This is the 'turned grey' input: it keeps the truth's exact Lab L, so the grey baseline
    differs from the truth only in a/b and every error the model adds is chroma error.
    """
    lin = srgb_to_linear(torch.from_numpy(rgb).float() / 255.0)
    y = lin @ torch.tensor([0.2126, 0.7152, 0.0722])
    return linear_to_srgb(y).numpy().astype(np.float32)


def grey_rgb(luma: np.ndarray) -> np.ndarray:
    return np.repeat((luma * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def load_rgb(path: Path, max_side: int | None = None) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if max_side and max(rgb.shape[:2]) > max_side:
        s = max_side / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return rgb


GUIDE_MODES: tuple[str, ...] = ("none", "reference", "hints")
"""``--guide`` modes: unguided; the truth itself as reference after a random crop of 70-90 % of
each side and a flip; 16 random point hints with the truth's mean colour over a 5x5 patch."""

PHOTO_HINTS: int = 16
"""Point hints per photo in the ``hints`` mode."""


def photo_guide(truth: np.ndarray, mode: str, name: str, colorizer: Colorizer, hint_spread: float | None = None):
    """The guidance of ``mode`` for one photo, drawn from its truth (seeded by its name, so every
    run and every model gets the same references and hints); None for ``none``."""
    import zlib

    from filmcolor.guide.guider import Describer, Guide, ResolvedHint, rgb_to_ab

    if mode == "none":
        return None
    gen = np.random.default_rng(zlib.crc32(name.encode()))
    h, w = truth.shape[:2]
    if mode == "reference":
        ch, cw = int(h * gen.uniform(0.7, 0.9)), int(w * gen.uniform(0.7, 0.9))
        y, x = int(gen.integers(0, h - ch + 1)), int(gen.integers(0, w - cw + 1))
        ref = np.ascontiguousarray(truth[y : y + ch, x : x + cw][:, ::-1])
        return Guide(film_exemplar=Describer(colorizer).exemplar(ref.astype(np.float32) / 255.0))
    guide = Guide() if hint_spread is None else Guide(hint_spread=hint_spread)
    for _ in range(PHOTO_HINTS):
        cy, cx = int(gen.integers(2, h - 2)), int(gen.integers(2, w - 2))
        rgb = truth[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).mean(0)
        a, b = rgb_to_ab(tuple(round(v) for v in rgb))
        guide.hints.append(ResolvedHint((cx + 0.5) / w, (cy + 0.5) / h, a, b, 0.01))
    return guide


def eval_photos(colorizer: Colorizer, files: list[Path], sheet_n: int, out: Path,
                modes: tuple[str, ...] = ("none",), hint_spread: float | None = None) -> dict:
    """Score each photo turned grey and coloured once per guidance mode (row ``ours`` is the
    unguided one, ``ours+MODE`` the others)."""
    from filmcolor.metrics.frechet import FrechetFeatures, frechet_distance
    from filmcolor.metrics.image import ciede2000, colorfulness, psnr, ssim

    row_names = ["ours" if m == "none" else f"ours+{m}" for m in modes]
    rows: dict[str, list] = {n: [] for n in (*row_names, "grey")}
    names = []
    cf_truth = []
    sheet = []
    feats = FrechetFeatures()
    fe: dict[str, list] = {n: [] for n in (*row_names, "grey", "truth")}
    for i, p in enumerate(files):
        truth = load_rgb(p)
        if truth is None:
            continue
        luma = neutral_luma(truth)
        grey = grey_rgb(luma)
        coloured = []
        for mode, row in zip(modes, row_names, strict=True):
            colorizer.set_guide(photo_guide(truth, mode, p.name, colorizer, hint_spread))
            fr = colorizer.colorize_batch([Frame(index=0, luma=luma)])[0]
            coloured.append((row, merge_rgb(fr)))
        colorizer.set_guide(None)
        cf_truth.append(colorfulness(truth))
        names.append(p.name)
        for name, img in (*coloured, ("grey", grey)):
            rows[name].append(
                [ciede2000(img, truth), psnr(img, truth), ssim(img, truth), colorfulness(img)]
            )
        for name, img in (*coloured, ("grey", grey), ("truth", truth)):
            fe[name].append(feats(img))
        if len(sheet) < sheet_n:
            sheet.append(np.concatenate([grey, *(img for _, img in coloured), truth], axis=1))
        if (i + 1) % 50 == 0:
            logger.info("photos %d/%d", i + 1, len(files))
    truth_cf = float(np.mean(cf_truth))
    res = {"n": len(cf_truth), "colorfulness_truth": truth_cf}
    for name, r in rows.items():
        a = np.array(r)
        res[name] = {
            "ciede2000": float(a[:, 0].mean()),
            "psnr": float(a[:, 1].mean()),
            "ssim": float(a[:, 2].mean()),
            "colorfulness": float(a[:, 3].mean()),
            "colorfulness_ratio": float(a[:, 3].mean() / truth_cf),
            "frechet": frechet_distance(np.stack(fe[name]), np.stack(fe["truth"])),
        }
    for name in row_names:
        res[name]["ciede2000_ratio_vs_grey"] = res[name]["ciede2000"] / res["grey"]["ciede2000"]
    first = row_names[0]
    res["ciede2000_ratio_vs_grey"] = res[first]["ciede2000"] / res["grey"]["ciede2000"]
    res["psnr_gain_vs_grey"] = res[first]["psnr"] - res["grey"]["psnr"]
    res["rows"] = row_names
    if sheet:
        write_sheet(sheet, out / "sheet_photos.png", width=(len(row_names) + 2) * 256)
    write_photo_table(out / "photos.csv", names, rows, cf_truth)
    return res


def write_photo_table(path: Path, names: list[str], rows: dict, cf_truth: list[float]) -> None:
    """One CSV line per photo: CIEDE2000 and PSNR of ours and of grey, colourfulness of ours and
    truth; with several guidance modes, the CIEDE2000 of each further row too."""
    import csv

    ours = [k for k in rows if k != "grey"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "ciede2000", "ciede2000_grey", "psnr", "psnr_grey", "colorfulness", "colorfulness_truth",
                    *(f"ciede2000_{k}" for k in ours[1:])])
        for i, n in enumerate(names):
            o, g = rows[ours[0]][i], rows["grey"][i]
            w.writerow([n, f"{o[0]:.4f}", f"{g[0]:.4f}", f"{o[1]:.3f}", f"{g[1]:.3f}", f"{o[3]:.3f}", f"{cf_truth[i]:.3f}",
                        *(f"{rows[k][i][0]:.4f}" for k in ours[1:])])


def write_sheet(rows: list[np.ndarray], path: Path, width: int) -> None:
    """Stack rows (each resized to ``width``) into one PNG."""
    scaled = [cv2.resize(r, (width, round(r.shape[0] * width / r.shape[1])), interpolation=cv2.INTER_AREA) for r in rows]
    img = np.concatenate(scaled, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def video_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (0-1) of sRGB uint8 ``rgb``: the Y plane a video carries, which is what a colour
    clip turned grey keeps (FFmpeg's ``format=gray`` or ``hue=s=0``) and what filmcolor's output
    keeps bit for bit; the truth is then exactly this luma plus its own chroma."""
    return (rgb.astype(np.float32) @ np.asarray(BT601, np.float32)) / 255.0


def clip_frames(path: Path, max_frames: int, short: int, grey: str = "luma"):
    """Yield (Frame with the grey input, truth rgb) for the first ``max_frames`` frames, resized.

    ``grey="luma"``: the clip's BT.601 luma (:func:`video_luma`); ``"lightness"``: the grey of
    the truth's exact CIE lightness (:func:`neutral_luma`, as for photos)."""
    to_grey = video_luma if grey == "luma" else neutral_luma
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        for i, vf in enumerate(c.decode(st)):
            if i >= max_frames:
                break
            rgb = vf.to_ndarray(format="rgb24")
            s = short / min(rgb.shape[:2])
            if s < 1:
                rgb = cv2.resize(rgb, (round(rgb.shape[1] * s) // 2 * 2, round(rgb.shape[0] * s) // 2 * 2), interpolation=cv2.INTER_AREA)
            yield Frame(index=i, luma=to_grey(rgb), pts=vf.pts, time_base=st.time_base), rgb


CLIP_METRICS = ("ciede2000", "edge", "moving", "flicker", "cdc", "warp", "colorfulness")
"""Per-clip figures: mean CIEDE2000 over all frames, the same near strong edges, the same where
the truth moved (ghosting), still-pixel flicker, CDC, warp error and colourfulness."""

MOVED: float = 3.0
"""A pixel 'moved' when the truth's L, a or b changed by more than this since the last frame."""


def video_rgb(frame: Frame, upsample: str) -> np.ndarray:
    """What the encoder gets for ``frame``, as RGB: the source luma with Cb/Cr at half
    resolution (4:2:0), brought back to full size as a player does."""
    from filmcolor.infer.merge import chroma_planes
    from filmcolor.preview import frame_rgb

    if frame.ab is None:
        return grey_rgb(frame.luma)
    frame.extra["cbcr"] = chroma_planes(frame, upsample=upsample)
    return frame_rgb(frame)


def score_clip(outs: list[np.ndarray], truths: list[np.ndarray], guide: list[np.ndarray]) -> dict:
    """The :data:`CLIP_METRICS` of one coloured clip against its truth (``guide``: grey luma)."""
    from filmcolor.metrics.image import colorfulness, delta_e_ciede2000, srgb_to_lab
    from filmcolor.metrics.video import (
        CDCAccumulator,
        StillFlickerAccumulator,
        WarpErrorAccumulator,
        edge_mask,
    )

    c, w, fl = CDCAccumulator(), WarpErrorAccumulator(), StillFlickerAccumulator()
    de, edge, moving, cf = [], [], [], []
    prev_truth = None
    for img, truth, g in zip(outs, truths, guide, strict=True):
        c.update(img)
        w.update(img, guide=g)
        fl.update(img, guide=grey_rgb(g))
        lab_t = srgb_to_lab(truth)
        d = delta_e_ciede2000(srgb_to_lab(img), lab_t)
        de.append(d.mean())
        mask = edge_mask(lab_t[..., 0])
        if mask.any():
            edge.append((d[mask].sum(), mask.sum()))
        if prev_truth is not None:
            moved = np.abs(lab_t - prev_truth).max(-1) > MOVED
            if moved.any():
                moving.append((d[moved].sum(), moved.sum()))
        prev_truth = lab_t
        cf.append(colorfulness(img))

    def pooled(parts: list) -> float:
        return float(sum(p[0] for p in parts) / sum(p[1] for p in parts)) if parts else float("nan")

    return {"ciede2000": float(np.mean(de)), "edge": pooled(edge), "moving": pooled(moving),
            "flicker": fl.result(), "cdc": c.result(), "warp": w.result(),
            "colorfulness": float(np.mean(cf))}


def clip_variants(args: argparse.Namespace) -> dict[str, dict]:
    """The coloured variants of each clip: ``--variant NAME:key=value,...`` or the defaults."""
    from filmcolor.infer.upsample import DEFAULT_UPSAMPLER
    from filmcolor.temporal.chain import DEFAULT_TEMPORAL

    base = {"vividness": None, "fade": None, "temperature": None, "smoothing": args.smoothing, "temporal": DEFAULT_TEMPORAL,
            "upsample": DEFAULT_UPSAMPLER, "keep": None, "hold_sigma": None, "period": None, "chroma_tol": None,
            "guide": "none"}
    if not args.variant:
        return {"ours_raw": {**base, "smoothing": 0.0}, "ours": base}
    out = {}
    for spec in args.variant:
        name, _, rest = spec.partition(":")
        v = dict(base)
        for kv in filter(None, rest.split(",")):
            k, _, val = kv.partition("=")
            if k not in v:
                raise SystemExit(f"--variant {spec}: unknown key {k!r} (known: {', '.join(v)})")
            v[k] = val if k in ("temporal", "upsample", "guide") else float(val)
        if v["guide"] not in ("none", "reference"):
            raise SystemExit(f"--variant {spec}: guide is none or reference on clips")
        out[name] = v
    return out


def clip_guide(frames: list[Frame], truths: list[np.ndarray], colorizer: Colorizer):
    """One reference per shot: the truth of the frame in the middle of the shot (shots from the
    scene-cut marks already on ``frames``)."""
    from filmcolor.guide.guider import Describer, Guide

    starts = [f.index for f in frames if f.scene_start or f.index == frames[0].index]
    ends = [*starts[1:], frames[-1].index + 1]
    guide = Guide()
    guide.set_cuts(starts)
    describer = Describer(colorizer)
    first = frames[0].index
    for a, b in zip(starts, ends, strict=True):
        mid = (a + b - 1) // 2
        guide.shot_exemplars[mid] = describer.exemplar(truths[mid - first].astype(np.float32) / 255.0)
    return guide


def eval_clips(colorizer: Colorizer, files: list[Path], max_frames: int, short: int,
               variants: dict[str, dict], grey: str = "luma",
               default_gain: float | None = None) -> dict:
    """Colour each clip once per vividness, then run every variant's temporal stages and chroma
    upsampling on copies of the model's a/b; score truth, grey and each variant per clip.

    A variant without a vividness uses ``default_gain`` (default: the model's footage default,
    as ``filmcolor film.mp4`` does); one without a fade, the model's footage fade."""
    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.hold import ColourHold
    from filmcolor.temporal.scenecut import SceneCutDetector

    per_clip: dict[str, dict[str, dict]] = {}
    photo_gain, photo_fade = colorizer.vividness, colorizer.fade
    film_gain, default_fade = colorizer.footage_defaults()
    if default_gain is None:
        default_gain = film_gain
    bins = getattr(colorizer.model, "bins", None)
    default_temp = float(bins.temperature) if bins is not None else None
    for n, p in enumerate(files):
        frames = list(clip_frames(p, max_frames, short, grey))
        if len(frames) < 5:
            continue
        truths = [t for _, t in frames]
        guide = [f.luma for f, _ in frames]
        scores = {"truth": score_clip(truths, truths, guide),
                  "grey": score_clip([grey_rgb(g) for g in guide], truths, guide)}
        raw: dict[tuple, list[Frame]] = {}
        for name, v in variants.items():
            gain = default_gain if v["vividness"] is None else v["vividness"]
            temp = default_temp if v["temperature"] is None else v["temperature"]
            fade = default_fade if v["fade"] is None else v["fade"]
            key = (gain, fade, temp, v["guide"])
            if key not in raw:
                colorizer.set_vividness(gain)
                colorizer.set_fade(fade)
                if bins is not None:
                    bins.temperature.fill_(temp)
                stream = [Frame(index=f.index, luma=f.luma, pts=f.pts, time_base=f.time_base) for f, _ in frames]
                stream = list(SceneCutDetector().annotate(iter(stream)))
                colorizer.set_guide(clip_guide(stream, truths, colorizer) if v["guide"] == "reference" else None)
                raw[key] = list(colorizer(iter(stream)))
                colorizer.set_guide(None)
            copies = [Frame(index=f.index, luma=f.luma, scene_start=f.scene_start, ab=f.ab.copy()) for f in raw[key]]
            chain = build_temporal(v["smoothing"], v["temporal"])
            if chain.hold is not None and any(v[k] is not None for k in ("keep", "hold_sigma", "period", "chroma_tol")):
                hold = ColourHold()
                chain.hold = ColourHold(keep=v["keep"] if v["keep"] is not None else hold.keep,
                                        luma_sigma=v["hold_sigma"] or hold.luma_sigma,
                                        period=int(v["period"] or hold.period),
                                        chroma_tolerance=v["chroma_tol"] or hold.chroma_tolerance)
            t0 = time.perf_counter()
            done = list(chain(iter(copies)))
            t1 = time.perf_counter()
            outs = [video_rgb(f, v["upsample"]) for f in done]
            t2 = time.perf_counter()
            scores[name] = score_clip(outs, truths, guide)
            # Per frame: the temporal stages, and the chroma merge (upsampling included) plus
            # the conversion to RGB for scoring.
            scores[name]["ms_temporal"] = 1000 * (t1 - t0) / len(done)
            scores[name]["ms_merge"] = 1000 * (t2 - t1) / len(done)
        colorizer.set_vividness(photo_gain)
        colorizer.set_fade(photo_fade)
        if bins is not None:
            bins.temperature.fill_(default_temp)
        per_clip[p.name] = scores
        logger.info("clip %d/%d %s", n + 1, len(files), p.name)
    return aggregate_clips(per_clip, variants, max_frames=max_frames, short_side=short, grey_input=grey,
                           default_vividness=default_gain, default_fade=default_fade)


def aggregate_clips(per_clip: dict[str, dict[str, dict]], variants: dict[str, dict], **info) -> dict:
    """The overall figures of per-clip scores (``per_clip[clip][variant][metric]``): each metric's
    mean over the clips, and each variant's ratios against grey and the truth."""
    res: dict = {"n": len(per_clip), **info, "variants": variants, "per_clip": per_clip}
    for name in ["truth", "grey", *variants]:
        keys = [*CLIP_METRICS, *(("ms_temporal", "ms_merge") if name in variants else ())]
        res[name] = {m: float(np.nanmean([c[name][m] for c in per_clip.values()])) for m in keys}

    def ratio(a: float, b: float) -> float:
        # A clean synthetic clip has no flicker at all: its ratio is undefined, not a crash.
        return a / b if b > 0 else float("nan")

    for name in variants:
        r = res[name]
        r["ciede2000_ratio_vs_grey"] = ratio(r["ciede2000"], res["grey"]["ciede2000"])
        r["flicker_ratio_vs_truth"] = ratio(r["flicker"], res["truth"]["flicker"])
        r["cdc_ratio_vs_truth"] = ratio(r["cdc"], res["truth"]["cdc"])
        r["colorfulness_ratio_vs_truth"] = ratio(r["colorfulness"], res["truth"]["colorfulness"])
        per = [ratio(c[name]["flicker"], c["truth"]["flicker"]) for c in per_clip.values()]
        r["worst_clip_flicker_ratio"] = float(np.nanmax(per)) if not np.isnan(per).all() else float("nan")
    if "ours" in variants:
        res["cdc_ratio_vs_truth"] = res["ours"]["cdc_ratio_vs_truth"]
    return res


def clip_files(folder: Path) -> list[Path]:
    """The video files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS)


def write_clip_report(res: dict, out: Path) -> str:
    """Write ``metrics.json`` and ``metrics.md`` (the clip tables) of ``res`` into ``out``;
    returns the tables."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(res, indent=2))
    table = "\n".join(clip_markdown(res))
    (out / "metrics.md").write_text(table + "\n")
    return table


def clip_markdown(cl: dict) -> list[str]:
    """The clip tables: overall per variant, then per clip for the last variant."""
    lines = [
        (f"Clips: {cl['n']} colour clips, first {cl['max_frames']} frames, short side {cl['short_side']} px, "
        f"turned grey by their {'BT.601 luma plane' if cl['grey_input'] == 'luma' else 'CIE lightness'} "
        "(each variant as the video output: the source luma, Cb/Cr at half resolution)."),
        "",
        "| | CIEDE2000 ↓ (x grey) | edge ↓ | where moved ↓ | still flicker ↓ (x truth) | CDC ↓ (x truth) | warp error ↓ | colourfulness (x truth) | ms/frame temporal, merge |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("truth", "grey", *cl["variants"]):
        r = cl[name]
        if name in cl["variants"]:
            lines.append(
                f"| {name} | {r['ciede2000']:.2f} ({r['ciede2000_ratio_vs_grey']:.3f}x) | {r['edge']:.2f} | "
                f"{r['moving']:.2f} | {r['flicker']:.3f} ({r['flicker_ratio_vs_truth']:.2f}x, worst clip "
                f"{r['worst_clip_flicker_ratio']:.2f}x) | {r['cdc']:.5f} ({r['cdc_ratio_vs_truth']:.2f}x) | "
                f"{r['warp']:.5f} | {r['colorfulness']:.1f} ({r['colorfulness_ratio_vs_truth']:.2f}x) | "
                f"{r['ms_temporal']:.2f}, {r['ms_merge']:.2f} |")
        else:
            lines.append(
                f"| {name} | {r['ciede2000']:.2f} | {r['edge']:.2f} | {r['moving']:.2f} | {r['flicker']:.3f} | "
                f"{r['cdc']:.5f} | {r['warp']:.5f} | {r['colorfulness']:.1f} | |")
    last = list(cl["variants"])[-1]
    lines += ["", f"Per clip, `{last}` (CIEDE2000 x grey, still flicker x truth, CDC x truth):", "",
              "| clip | CIEDE2000 | flicker | CDC |", "|---|---|---|---|"]
    for clip, c in cl["per_clip"].items():
        o = c[last]
        lines.append(f"| {clip} | {o['ciede2000'] / c['grey']['ciede2000']:.2f}x | "
                     f"{o['flicker'] / c['truth']['flicker']:.2f}x | {o['cdc'] / c['truth']['cdc']:.2f}x |")
    return lines


def bw_sheet(colorizer: Colorizer, files: list[Path], path: Path, per_clip: int = 4) -> None:
    """Original | ours for a few frames of each genuine black-and-white film (no ground truth)."""
    import av

    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.scenecut import SceneCutDetector

    photo_gain, photo_fade = colorizer.vividness, colorizer.fade
    rows = []
    for p in files:
        if p.suffix.lower() in IMAGE_EXTS:
            rgb = load_rgb(p, 640)
            luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            fr = colorizer.colorize_batch([Frame(index=0, luma=luma)])[0]
            rows.append(np.concatenate([grey_rgb(luma), merge_rgb(fr)], axis=1))
            continue
        with av.open(str(p)) as c:
            n = c.streams.video[0].frames or 300
        picks = set(np.linspace(0, max(0, n - 1), per_clip).astype(int).tolist())
        frames = []
        with av.open(str(p)) as c:
            for i, vf in enumerate(c.decode(video=0)):
                frames.append(Frame(index=i, luma=vf.to_ndarray(format="gray").astype(np.float32) / 255.0))
                if i >= max(picks):
                    break
        # A film as `filmcolor film.mp4` colours it: footage vividness and fade, default
        # temporal stages.
        film_gain, film_fade = colorizer.footage_defaults()
        colorizer.set_vividness(film_gain)
        colorizer.set_fade(film_fade)
        stream = build_temporal(0.5)(colorizer(SceneCutDetector().annotate(iter(frames))))
        for f in stream:
            if f.index in picks:
                rows.append(np.concatenate([grey_rgb(f.luma), video_rgb(f, "bilateral")], axis=1))
        colorizer.set_vividness(photo_gain)
        colorizer.set_fade(photo_fade)
    if rows:
        write_sheet(rows, path, width=2 * 384)


def markdown(res: dict, args: argparse.Namespace) -> str:
    head = (
        f"Model `{args.model}` at render size {args.render_size}, temperature {args.temperature_used}, "
        f"chroma gain {args.chroma_gain_used} (certainty power {args.gain_power_used})."
    )
    lines = [head, ""]
    if "photos" in res:
        ph = res["photos"]
        lines += [
            f"Photos: {ph['n']} images from `{args.photos_name}` (truth colourfulness {ph['colorfulness_truth']:.1f}).",
            "",
            "| | CIEDE2000 ↓ | PSNR ↑ | SSIM ↑ | colourfulness (ratio to truth) | Fréchet (Lite0) ↓ |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("grey", *ph.get("rows", ["ours"])):
            r = ph[name]
            ratio = f" ({r['ciede2000_ratio_vs_grey']:.3f}x)" if "ciede2000_ratio_vs_grey" in r else ""
            lines.append(
                f"| {name} | {r['ciede2000']:.2f}{ratio} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                f"{r['colorfulness']:.1f} ({r['colorfulness_ratio']:.2f}x) | {r['frechet']:.2f} |"
            )
        lines += ["", f"CIEDE2000 {ph.get('rows', ['ours'])[0]}/grey: **{ph['ciede2000_ratio_vs_grey']:.3f}x**; PSNR gain over grey: **{ph['psnr_gain_vs_grey']:+.2f} dB**.", ""]
    if "clips" in res:
        lines += clip_markdown(res["clips"]) + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--temperature", type=float, help="override the model's annealed-mean temperature")
    ap.add_argument("--chroma-gain", type=float, help="override the model's decoding chroma gain")
    ap.add_argument("--gain-power", type=float, help="override the hue-certainty exponent of the chroma gain")
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared/data/photos/dev")
    ap.add_argument("--holdout-every", type=int, default=0,
                    help="use only the hash-held-out files of --photos (training's validation split)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos / clips (0 = all)")
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared/data/clips/colour")
    ap.add_argument("--no-clips", action="store_true")
    ap.add_argument("--no-photos", action="store_true")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument("--clip-short", type=int, default=240)
    ap.add_argument("--clip-grey", choices=("luma", "lightness"), default="luma",
                    help="how clips are turned grey: their BT.601 luma plane (what a video keeps) "
                         "or the grey of their exact CIE lightness (as photos)")
    ap.add_argument("--smoothing", type=float, default=0.5)
    ap.add_argument("--variant", action="append", default=[],
                    help="a clip variant NAME:key=value,... (keys: vividness, temperature, smoothing, temporal, "
                         "upsample, keep, hold_sigma, period, chroma_tol); repeatable; default: no smoothing and the defaults")
    ap.add_argument("--bw", type=Path, nargs="*", default=[], help="folders of genuine b&w films/photos for a sheet")
    ap.add_argument("--sheet", type=int, default=12, help="photos in the contact sheet")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/eval")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--guide", action="append", choices=GUIDE_MODES, default=[],
                    help="photo guidance modes to score, repeatable (default: none); clips take a "
                         "variant key guide=reference (one reference per shot: its middle frame's truth)")
    ap.add_argument("--hint-spread", type=float,
                    help="reach of a hint's region search, relative to the width (0: discs only; "
                         "default: filmcolor.guide.planes.HINT_SPREAD)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    model = create_model(args.model, weights=args.weights)
    if args.temperature is not None and hasattr(model, "bins"):
        model.bins.temperature.fill_(args.temperature)
    if args.chroma_gain is not None and hasattr(model, "bins"):
        model.bins.chroma_gain.fill_(args.chroma_gain)
    if args.gain_power is not None and hasattr(model, "bins"):
        model.bins.gain_power.fill_(args.gain_power)
    args.temperature_used = round(float(model.bins.temperature), 4) if hasattr(model, "bins") else None
    args.chroma_gain_used = round(float(model.bins.chroma_gain), 4) if hasattr(model, "bins") else None
    args.gain_power_used = round(float(model.bins.gain_power), 4) if hasattr(model, "bins") else None
    colorizer = Colorizer(model, "auto", args.batch_size, args.render_size)
    res: dict = {"model": args.model, "render_size": args.render_size, "temperature": args.temperature_used,
                 "chroma_gain": args.chroma_gain_used, "gain_power": args.gain_power_used}
    t0 = time.time()
    args.photos_name = args.photos.name
    if not args.no_photos and args.photos.is_dir():
        files = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if args.holdout_every:
            files = [p for p in files if is_holdout(p.name, args.holdout_every)]
            args.photos_name += f" (hold-out 1/{args.holdout_every})"
        if args.limit:
            files = files[: args.limit]
        res["photos"] = eval_photos(colorizer, files, args.sheet, args.out, tuple(args.guide or ["none"]),
                                    args.hint_spread)
    if not args.no_clips and args.clips.is_dir():
        files = clip_files(args.clips)
        if args.limit:
            files = files[: args.limit]
        res["clips"] = eval_clips(colorizer, files, args.clip_frames, args.clip_short,
                                  clip_variants(args), args.clip_grey, args.chroma_gain)
    bw_files = [p for d in args.bw for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS]
    if bw_files:
        bw_sheet(colorizer, bw_files, args.out / "sheet_bw.png")
    res["seconds"] = time.time() - t0
    (args.out / "metrics.json").write_text(json.dumps(res, indent=2))
    md = markdown(res, args)
    (args.out / "metrics.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
