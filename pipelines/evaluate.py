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

from filmcolor.color.space import linear_to_srgb, srgb_to_linear
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


def eval_photos(colorizer: Colorizer, files: list[Path], sheet_n: int, out: Path) -> dict:
    from filmcolor.metrics.frechet import FrechetFeatures, frechet_distance
    from filmcolor.metrics.image import ciede2000, colorfulness, psnr, ssim

    rows = {"ours": [], "grey": []}
    names = []
    cf_truth = []
    sheet = []
    feats = FrechetFeatures()
    fe = {"ours": [], "grey": [], "truth": []}
    for i, p in enumerate(files):
        truth = load_rgb(p)
        if truth is None:
            continue
        luma = neutral_luma(truth)
        fr = colorizer.colorize_batch([Frame(index=0, luma=luma)])[0]
        ours = merge_rgb(fr)
        grey = grey_rgb(luma)
        cf_truth.append(colorfulness(truth))
        names.append(p.name)
        for name, img in (("ours", ours), ("grey", grey)):
            rows[name].append(
                [ciede2000(img, truth), psnr(img, truth), ssim(img, truth), colorfulness(img)]
            )
        for name, img in (("ours", ours), ("grey", grey), ("truth", truth)):
            fe[name].append(feats(img))
        if len(sheet) < sheet_n:
            sheet.append(np.concatenate([grey, ours, truth], axis=1))
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
    res["ciede2000_ratio_vs_grey"] = res["ours"]["ciede2000"] / res["grey"]["ciede2000"]
    res["psnr_gain_vs_grey"] = res["ours"]["psnr"] - res["grey"]["psnr"]
    if sheet:
        write_sheet(sheet, out / "sheet_photos.png", width=3 * 256)
    write_photo_table(out / "photos.csv", names, rows, cf_truth)
    return res


def write_photo_table(path: Path, names: list[str], rows: dict, cf_truth: list[float]) -> None:
    """One CSV line per photo: CIEDE2000 and PSNR of ours and of grey, colourfulness of ours and truth."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "ciede2000", "ciede2000_grey", "psnr", "psnr_grey", "colorfulness", "colorfulness_truth"])
        for i, n in enumerate(names):
            o, g = rows["ours"][i], rows["grey"][i]
            w.writerow([n, f"{o[0]:.4f}", f"{g[0]:.4f}", f"{o[1]:.3f}", f"{g[1]:.3f}", f"{o[3]:.3f}", f"{cf_truth[i]:.3f}"])


def write_sheet(rows: list[np.ndarray], path: Path, width: int) -> None:
    """Stack rows (each resized to ``width``) into one PNG."""
    scaled = [cv2.resize(r, (width, round(r.shape[0] * width / r.shape[1])), interpolation=cv2.INTER_AREA) for r in rows]
    img = np.concatenate(scaled, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def clip_frames(path: Path, max_frames: int, short: int):
    """Yield (Frame with neutral luma, truth rgb) for the first ``max_frames`` frames, resized."""
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
            yield Frame(index=i, luma=neutral_luma(rgb), pts=vf.pts, time_base=st.time_base), rgb


def eval_clips(colorizer: Colorizer, files: list[Path], max_frames: int, short: int, smoothing: float) -> dict:
    from filmcolor.metrics.video import CDCAccumulator, WarpErrorAccumulator
    from filmcolor.temporal.scenecut import SceneCutDetector
    from filmcolor.temporal.smoothing import ChromaSmoother

    variants = {"truth": None, "grey": None, "ours_raw": 0.0, "ours": smoothing}
    acc = {k: {"cdc": [], "warp": []} for k in variants}
    for n, p in enumerate(files):
        frames = list(clip_frames(p, max_frames, short))
        if len(frames) < 5:
            continue
        truths = [t for _, t in frames]
        guide = [f.luma for f, _ in frames]
        outs = {"truth": truths, "grey": [grey_rgb(g) for g in guide]}
        for name in ("ours_raw", "ours"):
            stream = iter([Frame(index=f.index, luma=f.luma, pts=f.pts, time_base=f.time_base) for f, _ in frames])
            stream = SceneCutDetector().annotate(stream)
            stream = colorizer(stream)
            if variants[name]:
                stream = ChromaSmoother.from_strength(variants[name])(stream)
            outs[name] = [merge_rgb(f) for f in stream]
        for name, seq in outs.items():
            c, w = CDCAccumulator(), WarpErrorAccumulator()
            for img, g in zip(seq, guide, strict=True):
                c.update(img)
                w.update(img, guide=g)
            acc[name]["cdc"].append(c.result())
            acc[name]["warp"].append(w.result())
        logger.info("clip %d/%d %s", n + 1, len(files), p.name)
    res = {"n": len(acc["truth"]["cdc"]), "max_frames": max_frames, "short_side": short}
    for name, a in acc.items():
        res[name] = {"cdc": float(np.mean(a["cdc"])), "warp_error": float(np.mean(a["warp"]))}
    res["cdc_ratio_vs_truth"] = res["ours"]["cdc"] / res["truth"]["cdc"]
    return res


def bw_sheet(colorizer: Colorizer, files: list[Path], path: Path, per_clip: int = 4) -> None:
    """Original | ours for a few frames of each genuine black-and-white film (no ground truth)."""
    import av

    from filmcolor.temporal.scenecut import SceneCutDetector
    from filmcolor.temporal.smoothing import ChromaSmoother

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
        stream = ChromaSmoother.from_strength(0.5)(colorizer(SceneCutDetector().annotate(iter(frames))))
        for f in stream:
            if f.index in picks:
                rows.append(np.concatenate([grey_rgb(f.luma), merge_rgb(f)], axis=1))
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
        for name in ("grey", "ours"):
            r = ph[name]
            lines.append(
                f"| {name} | {r['ciede2000']:.2f} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                f"{r['colorfulness']:.1f} ({r['colorfulness_ratio']:.2f}x) | {r['frechet']:.2f} |"
            )
        lines += ["", f"CIEDE2000 ours/grey: **{ph['ciede2000_ratio_vs_grey']:.3f}x**; PSNR gain over grey: **{ph['psnr_gain_vs_grey']:+.2f} dB**.", ""]
    if "clips" in res:
        cl = res["clips"]
        lines += [
            f"Clips: {cl['n']} colour clips, first {cl['max_frames']} frames, short side {cl['short_side']} px.",
            "",
            "| | CDC ↓ | warp error ↓ |",
            "|---|---|---|",
        ]
        for name in ("truth", "grey", "ours_raw", "ours"):
            label = {"ours_raw": "ours, no smoothing", "ours": f"ours, smoothing {args.smoothing}"}.get(name, name)
            lines.append(f"| {label} | {cl[name]['cdc']:.5f} | {cl[name]['warp_error']:.5f} |")
        lines += ["", f"CDC ours/truth: **{cl['cdc_ratio_vs_truth']:.2f}x**.", ""]
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
    ap.add_argument("--smoothing", type=float, default=0.5)
    ap.add_argument("--bw", type=Path, nargs="*", default=[], help="folders of genuine b&w films/photos for a sheet")
    ap.add_argument("--sheet", type=int, default=12, help="photos in the contact sheet")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/eval")
    ap.add_argument("--batch-size", type=int, default=8)
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
        res["photos"] = eval_photos(colorizer, files, args.sheet, args.out)
    if not args.no_clips and args.clips.is_dir():
        files = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in VIDEO_EXTS)
        if args.limit:
            files = files[: args.limit]
        res["clips"] = eval_clips(colorizer, files, args.clip_frames, args.clip_short, args.smoothing)
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
