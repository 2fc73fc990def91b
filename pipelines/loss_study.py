"""Does classification over a/b bins beat plain regression? Two short runs, same everything else.

    python pipelines/loss_study.py --steps 1000 --crop 128 --limit 100

Trains two models from the same ImageNet encoder, seed, data, batches and augmentation for
``--steps`` steps (the stage-1 recipe of ``pipelines/train.toml``, film augmentation 0.3): one with
the default loss (rebalanced cross-entropy over a/b bins + a small regression term) and one with
plain smooth-L1 regression of a/b; then evaluates both on the first ``--limit`` dev photos and
prints CIEDE2000, colourfulness and PSNR beside the grey baseline, each decoded plainly and with a
chroma gain: for classification the hue-certainty-weighted gain of the shipped decoder, for
regression (whose output is a mean, not a trained distribution) the same gain everywhere. Short
runs at a small crop: the point is the comparison, not the level.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--aug-strength", type=float, default=0.3, help="film augmentation (as in the shipped recipe)")
    ap.add_argument("--gain", type=float, default=1.6, help="also evaluate both with this decoding chroma gain")
    ap.add_argument("--gain-power", type=float, default=8.0, help="its hue-certainty exponent")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/loss_study")
    args = ap.parse_args(argv)
    rows = {}
    for name, loss in (("classification", "classification"), ("regression", "regression")):
        run_dir = args.out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        shared_cache = ROOT / "runs/lite0/cache.pkl"
        if shared_cache.exists() and not (run_dir / "cache.pkl").exists():
            os.symlink(shared_cache, run_dir / "cache.pkl")  # same decoded images, no re-decode
        sets = [f'run_dir="{run_dir}"', f"steps={args.steps}", f"crop={args.crop}",
                f'loss="{loss}"', f"checkpoint_every={args.steps}", "warmup=30",
                f"aug_strength={args.aug_strength}"]
        run("pipelines/train.py", "pipelines/train.toml", "--quiet", "--set", *sets)
        weights = run_dir / "weights.pt"
        run("pipelines/train.py", "pipelines/train.toml", "--set", *sets, "--export", str(weights))
        power = args.gain_power
        extra = []
        if loss == "regression":
            power = 0.0  # a uniform gain: its softmax was never trained to be a distribution
            extra = ["--temperature", "1.0"]
        for gain in (1.0, args.gain):
            ev = run_dir / f"eval_gain{gain:g}"
            run("pipelines/evaluate.py", "--weights", str(weights), "--no-clips", "--limit", str(args.limit),
                "--sheet", "8", "--out", str(ev), "--chroma-gain", str(gain), "--gain-power", str(power), *extra)
            rows[f"{name}, chroma gain {gain:g}"] = json.loads((ev / "metrics.json").read_text())["photos"]
    grey = next(iter(rows.values()))["grey"]
    print(f"\n{args.steps} steps, crop {args.crop}, first {args.limit} dev photos, render 256\n")
    print("| loss, decoding | CIEDE2000 ↓ (x grey) | colourfulness (x truth) | PSNR ↑ (vs grey) |")
    print("|---|---|---|---|")
    print(f"| grey baseline | {grey['ciede2000']:.2f} (1.00x) | {grey['colorfulness']:.1f} ({grey['colorfulness_ratio']:.2f}x) | {grey['psnr']:.2f} |")
    for name, r in rows.items():
        o = r["ours"]
        print(f"| {name} | {o['ciede2000']:.2f} ({o['ciede2000'] / grey['ciede2000']:.3f}x) | "
              f"{o['colorfulness']:.1f} ({o['colorfulness_ratio']:.2f}x) | {o['psnr']:.2f} ({o['psnr'] - grey['psnr']:+.2f} dB) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
