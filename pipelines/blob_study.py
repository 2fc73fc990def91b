"""Where an isolated colour blob comes from, and what removes it (#13).

Not a test: the figures in the README ("Colour on footage") come from this command. The default
case is the orange blob that appears in the sky beside the sign of the genuine black-and-white
film in ``../shared/data/clips/bw`` (A-Bomb Blast Effects, frames 112-175, a 30x30 box right of
the sign). Two questions:

1. Decoding or network? The blob's redness (mean Lab a in the box) on its strongest frame at the
   plain mean (temperature 1, no gain), at the shipped temperature without gain, and with the
   photo gain: if it is there at the plain mean, the network's own colour distribution puts it
   there, not the annealing or the certainty-weighted gain.
2. What removes it: its redness over the frames, as predicted, after the 9-frame window, and
   after the window plus the flow-guided hold, with the photo decoding and the film default
   (vividness and fade).

    python pipelines/blob_study.py
    python pipelines/blob_study.py --clip FILM --frames 112-176 --box 172,202,334,364
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared/data/clips/bw/DeepRemaster__example__a-bomb_blast_effects_part.mp4"


def redness(ab: np.ndarray, shape: tuple[int, int], box: tuple[int, int, int, int]) -> float:
    """Mean positive Lab a (red-orange) over ``box = (y0, y1, x0, x1)`` of the full-size a/b."""
    from filmcolor.infer.upsample import upsample_ab

    y0, y1, x0, x1 = box
    full = upsample_ab(ab, shape, method="bilinear")
    return max(0.0, float(full[0, y0:y1, x0:x1].mean()))


def main(argv: list[str] | None = None) -> int:
    """Print both tables."""
    import av

    from filmcolor.frames import Frame
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model
    from filmcolor.temporal.chain import build_temporal
    from filmcolor.temporal.scenecut import SceneCutDetector

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--frames", default="112-176", help="range A-B (B exclusive) to score")
    ap.add_argument("--box", default="172,202,334,364", help="y0,y1,x0,x1 of the blob")
    args = ap.parse_args(argv)
    if not args.clip.is_file():
        raise SystemExit(f"no file {args.clip}: pass --clip")
    a, b = (int(v) for v in args.frames.split("-"))
    box = tuple(int(v) for v in args.box.split(","))
    assert len(box) == 4
    frames = []
    with av.open(str(args.clip)) as c:
        for i, vf in enumerate(c.decode(video=0)):
            if i >= b:
                break
            luma = vf.to_ndarray(format="gray").astype(np.float32) / 255
            frames.append(Frame(index=i, luma=luma))
    frames = list(SceneCutDetector().annotate(iter(frames)))
    col = Colorizer(create_model(), "cpu", 8, 256)
    bins = col.model.bins
    photo_gain, temperature = float(bins.chroma_gain), float(bins.temperature)
    footage_gain, footage_fade = col.footage_defaults()

    def run(gain: float, temp: float, fade: float = 0.0) -> list[Frame]:
        col.set_vividness(gain)
        col.set_fade(fade)
        bins.temperature.fill_(temp)
        fresh = [Frame(index=f.index, luma=f.luma, scene_start=f.scene_start) for f in frames]
        return list(col(iter(fresh)))

    shape = frames[0].luma.shape
    raw = run(photo_gain, temperature)
    peak = max(range(a, b), key=lambda i: redness(raw[i].ab, shape, box))
    print(f"{args.clip.name}, frames {a}-{b - 1}, box {box}; strongest on frame {peak}")
    print("1. redness on that frame by decoding:")
    for label, gain, temp in (("plain mean (T 1, gain 1)", 1.0, 1.0),
                              (f"annealed (T {temperature:g}, gain 1)", 1.0, temperature),
                              (f"photo default (T {temperature:g}, gain {photo_gain:g})",
                               photo_gain, temperature)):
        print(f"   {label:<34} {redness(run(gain, temp)[peak].ab, shape, box):5.1f}")
    print("2. redness over the frames (mean, max):")
    for label, gain, fade in (("photo", photo_gain, 0.0), ("film", footage_gain, footage_fade)):
        raw = run(gain, temperature, fade)
        for method in ("none", "window", "flow"):
            copies = [Frame(index=f.index, luma=f.luma, scene_start=f.scene_start, ab=f.ab.copy())
                      for f in raw]
            out = copies if method == "none" else list(build_temporal(0.5, method)(iter(copies)))
            r = np.array([redness(f.ab, shape, box) for f in out[a:b]])
            print(f"   {label} decoding (vividness {gain:g}, fade {fade:g}), temporal {method:<6}"
                  f"  {r.mean():5.1f} {r.max():5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
