"""The colour-on-footage study (#13): the shipped model on real colour clips turned grey.

Not a test: the table in the README ("Colour on footage") comes from this command. Each clip
(first ``--frames`` frames, 240 px short side) is turned grey by its own BT.601 luma plane (what
a video keeps, and what filmcolor's output keeps bit for bit), coloured once per vividness, and
then run through each variant's temporal stages and chroma upsampling exactly as the video
output is made (Cb/Cr at half resolution). Per variant it reports CIEDE2000 against grey, the
same near strong edges (colour bleeding) and where the truth moved (ghosting), still-pixel
flicker against the truth's (and the worst clip), CDC against the truth's, warp error,
colourfulness, and the milliseconds per frame of the temporal stages and of the merge.

    python pipelines/footage_study.py                          # all of ../shared/data/clips/colour
    python pipelines/footage_study.py --clips DIR --frames 60 --out runs/footage

The variants: filmcolor 0.1 (9-frame window, bilinear upsampling, vividness 1.5); the
temporal and upsampling defaults at the photo decoding; the film decoding before the fade (a
uniform vividness of 0.7, and 0.5); the shipped defaults (``default``: vividness 1.5, fade 8);
and stronger fades of unsure colour (12, 16).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pipelines"))

import evaluate

VARIANTS: tuple[str, ...] = (
    "v0.1:temporal=window,upsample=bilinear,vividness=1.5,fade=0",
    "flow_v1.5:vividness=1.5,fade=0",
    "uniform0.7:vividness=0.7,fade=0",
    "uniform0.5:vividness=0.5,fade=0",
    "default",
    "fade12:fade=12",
    "fade16:fade=16",
)
"""The study's rows (``evaluate.py --variant`` syntax); ``default`` is what a film run does."""


def main(argv: list[str] | None = None) -> int:
    """Run the study and print its Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared/data/clips/colour")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", type=Path, default=ROOT / "runs/footage_study")
    ap.add_argument("--variant", action="append", help="replace the study's variants")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.clips.is_dir():
        raise SystemExit(f"no folder {args.clips}: point --clips at colour clips")
    variants = evaluate.clip_variants(
        argparse.Namespace(variant=args.variant or list(VARIANTS), smoothing=0.5)
    )
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model

    colorizer = Colorizer(create_model(), "auto", 8, 256)
    files = evaluate.clip_files(args.clips)
    res = evaluate.eval_clips(colorizer, files, args.frames, 240, variants)
    print(evaluate.write_clip_report(res, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
