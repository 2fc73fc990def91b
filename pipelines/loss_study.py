"""Does classification over a/b bins beat plain regression? Two short runs, same everything else.

    python pipelines/loss_study.py --steps 1000 --crop 128 --limit 100
    python pipelines/loss_study.py --config pipelines/train_stage3.toml --steps 300 --crop 256 \
        --set ema_decay=0 --out runs/loss_study_s3

Trains two models from the same ImageNet encoder, seed, data, batches and augmentation for
``--steps`` steps (``pipelines/train.toml`` with the loss settings of the shipped stages: no class
rebalancing, film augmentation 0.3): one with the default loss (cross-entropy over a/b bins + a
small regression term) and one with plain smooth-L1 regression of a/b. Both are then evaluated on
the first ``--limit`` dev photos at several decoding chroma gains: for classification the
hue-certainty-weighted gain of the shipped decoder, for regression (whose output is a mean, not a
trained distribution) the same gain everywhere, its best possible use of a gain.

Plain regression is paler (it averages colours towards brown), so comparing the two at their
plain decoding compares accuracy at unequal vividness. The verdict row therefore compares them at
**equal colourfulness** (``--at``, x the truth's; the project's target is 0.75x): each arm's
CIEDE2000 is interpolated linearly between the two gains whose colourfulness brackets it.
Short runs at a small crop: the point is the comparison, not the level. ``--config`` and ``--set``
run the comparison elsewhere, e.g. as a fine-tune of the shipped stage 2 with the stage-3 recipe
(the second command; ``runs/stage2.pt`` is ``git show 7df1141:weights/filmcolor-lite0.pt``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def at_colourfulness(points: list[tuple[float, float]], target: float) -> float | None:
    """CIEDE2000 at colourfulness ``target``, interpolated on ``(colourfulness, ciede)`` points.

    None when the points do not bracket the target (no extrapolation: a gain sweep that never
    reaches the target says nothing about the error there).
    """
    pts = sorted(points)
    for (c0, e0), (c1, e1) in itertools.pairwise(pts):
        if c0 <= target <= c1:
            return e0 if c1 == c0 else e0 + (e1 - e0) * (target - c0) / (c1 - c0)
    return None


def parse_gains(text: str) -> list[float]:
    return [float(g) for g in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aug-strength", type=float, default=0.3, help="film augmentation (as in the shipped recipe)")
    ap.add_argument("--rebalance-alpha", type=float, default=0.0,
                    help="class rebalancing power of the classification arm (0, as the shipped stages 2-3)")
    ap.add_argument("--class-gains", type=parse_gains, default=parse_gains("1,1.3,1.6,1.9,2.2"),
                    help="certainty-weighted decoding gains for the classification arm")
    ap.add_argument("--reg-gains", type=parse_gains, default=parse_gains("1,1.2,1.4,1.6,1.8,2.0"),
                    help="uniform decoding gains for the regression arm")
    ap.add_argument("--gain-power", type=float, default=8.0, help="the hue-certainty exponent (as shipped)")
    ap.add_argument("--at", type=float, default=0.75, help="compare at this colourfulness (x the truth's)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/loss_study_a0")
    ap.add_argument("--config", default="pipelines/train.toml", help="training config both arms start from")
    ap.add_argument("--set", nargs="*", default=[], dest="overrides",
                    help="more config overrides (KEY=TOML value), applied after the study's own")
    args = ap.parse_args(argv)
    rows: dict[str, dict] = {}
    curves: dict[str, list[tuple[float, float]]] = {}
    for name, loss in (("classification", "classification"), ("regression", "regression")):
        run_dir = args.out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        for shared_cache in (ROOT / "runs/lite0/cache.pkl", args.out / "classification/cache.pkl"):
            if shared_cache.exists() and not (run_dir / "cache.pkl").exists():
                os.symlink(shared_cache.resolve(), run_dir / "cache.pkl")  # same decoded images, no re-decode
        sets = [f'run_dir="{run_dir}"', f"steps={args.steps}", f"crop={args.crop}", f"seed={args.seed}",
                f'loss="{loss}"', f"checkpoint_every={args.steps}", "warmup=30",
                f"aug_strength={args.aug_strength}", f"rebalance_alpha={args.rebalance_alpha}",
                *args.overrides]
        run("pipelines/train.py", args.config, "--quiet", "--set", *sets)
        weights = run_dir / "weights.pt"
        # Exported at the shipped model's annealed-mean temperature (the regression arm overrides it).
        run("pipelines/train.py", args.config, "--set", *sets, "--export", str(weights),
            "--temperature", "0.65")
        if loss == "regression":
            # A uniform gain at T = 1: its softmax was never trained to be a distribution.
            gains, extra = args.reg_gains, ["--temperature", "1.0", "--gain-power", "0"]
        else:
            gains, extra = args.class_gains, ["--gain-power", str(args.gain_power)]
        curves[name] = []
        for gain in gains:
            ev = run_dir / f"eval_gain{gain:g}"
            if not (ev / "metrics.json").exists():
                run("pipelines/evaluate.py", "--weights", str(weights), "--no-clips", "--limit", str(args.limit),
                    "--sheet", "8", "--out", str(ev), "--chroma-gain", str(gain), *extra)
            r = json.loads((ev / "metrics.json").read_text())["photos"]
            rows[f"{name}, gain {gain:g}"] = r
            grey_e = r["grey"]["ciede2000"]
            curves[name].append((r["ours"]["colorfulness_ratio"], r["ours"]["ciede2000"] / grey_e))
    grey = next(iter(rows.values()))["grey"]
    print(f"\n{args.steps} steps, crop {args.crop}, seed {args.seed}, first {args.limit} dev photos, render 256\n")
    print("| loss, decoding gain | CIEDE2000 ↓ (x grey) | colourfulness (x truth) | PSNR ↑ (vs grey) |")
    print("|---|---|---|---|")
    print(f"| grey baseline | {grey['ciede2000']:.2f} (1.00x) | {grey['colorfulness']:.1f} ({grey['colorfulness_ratio']:.2f}x) | {grey['psnr']:.2f} |")
    for name, r in rows.items():
        o = r["ours"]
        print(f"| {name} | {o['ciede2000']:.2f} ({o['ciede2000'] / grey['ciede2000']:.3f}x) | "
              f"{o['colorfulness']:.1f} ({o['colorfulness_ratio']:.2f}x) | {o['psnr']:.2f} ({o['psnr'] - grey['psnr']:+.2f} dB) |")
    print(f"\nAt equal colourfulness {args.at:g}x the truth's (CIEDE2000 x grey, interpolated):")
    for name, pts in curves.items():
        e = at_colourfulness(pts, args.at)
        print(f"  {name}: {'not reached by the gains swept' if e is None else f'{e:.3f}x'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
