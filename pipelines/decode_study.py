"""Compare ways of decoding the default model's a/b distribution into one colour per pixel.

    python pipelines/decode_study.py --weights weights/filmcolor-lite0.pt

The network outputs a distribution over a/b bins; the annealed mean (softmax at temperature T,
then the expectation) turns it into a colour. Where the model is unsure of the hue, the mean of
opposite hues is pale, so the output's colourfulness falls below the truth's. This script sweeps
the decoding settings stored in a weights file (temperature, chroma gain), and the fade of unsure
colour that films use (``--fades``; photos use none), on photos that training
never saw -- by default the training sets' hold-out files (one in 40), *not* the dev set, so that
the chosen setting is not tuned on the numbers we report -- and prints CIEDE2000 (ratio to the grey
baseline) and colourfulness (ratio to the truth) for each.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate import eval_photos

from filmcolor.infer.colorize import Colorizer
from filmcolor.models import create_model
from filmcolor.models.registry import DEFAULT_MODEL
from filmcolor.training.data import IMAGE_EXTS, is_holdout

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared/data/photos"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--photos", type=Path, nargs="*", default=[SHARED / "train", SHARED / "train_people"])
    ap.add_argument("--holdout-every", type=int, default=40, help="0 = every photo in --photos")
    ap.add_argument("--temperatures", default="0.65")
    ap.add_argument("--gains", default="1.0,1.15,1.3,1.45")
    ap.add_argument("--powers", default="1", help="exponents of the hue-certainty weight (0 = flat gain)")
    ap.add_argument("--fades", default="0", help="fade powers of unsure colour (0 = none, the photo default)")
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "runs/decode_study")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    files = sorted(
        p
        for d in args.photos
        for p in d.iterdir()
        if p.suffix.lower() in IMAGE_EXTS and (not args.holdout_every or is_holdout(p.name, args.holdout_every))
    )
    model = create_model(DEFAULT_MODEL, weights=args.weights)
    colorizer = Colorizer(model, "cpu", 8, args.render_size)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(files)} photos; render size {args.render_size}")
    print("| temperature | chroma gain | certainty power | fade | CIEDE2000 (x grey) | colourfulness (x truth) | PSNR over grey |")
    print("|---|---|---|---|---|---|---|")
    floats = lambda text: [float(v) for v in text.split(",")]
    powers = floats(args.powers)
    for t, g, k, q in itertools.product(floats(args.temperatures), floats(args.gains), powers, floats(args.fades)):
        if g == 1.0 and k != powers[0]:
            continue  # without a gain the power changes nothing
        model.bins.temperature.fill_(t)
        model.bins.chroma_gain.fill_(g)
        model.bins.gain_power.fill_(k)
        colorizer.set_fade(q)
        r = eval_photos(colorizer, files, 0, args.out)
        print(
            f"| {t:.2f} | {g:.2f} | {k:g} | {q:g} | {r['ours']['ciede2000']:.2f} ({r['ciede2000_ratio_vs_grey']:.3f}x) "
            f"| {r['ours']['colorfulness']:.1f} ({r['ours']['colorfulness_ratio']:.2f}x) "
            f"| {r['psnr_gain_vs_grey']:+.2f} dB |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
