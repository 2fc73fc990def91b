"""Can decoding alone bring footage below grey? The shipped model's decodings on real clips (#13).

Not a test: the README's "Colour on footage" paragraph on decoding comes from this command.

    python pipelines/frontier_study.py                 # ../shared/data/clips/colour
    python pipelines/frontier_study.py --clips DIR --every 10 --frames 40

Every ``--every``-th of the first ``--frames`` frames of each clip (240 px short side, grey by
the clip's BT.601 luma, as ``footage_study.py``) goes through the network once; the logits are
kept, and each row decodes them its own way. A row's frame is scored as the video output is
made (source luma, Cb/Cr at half resolution, edge-aware upsampling) but without the temporal
stages, which move accuracy by a few hundredths at most (the footage study's table): this study
is about where the colour comes from, not how it is held.

Rows:
- the annealed mean with the film fade of unsure colour at several powers (0 = photo decoding;
  8 = the film default), and with a higher vividness and a stronger fade together;
- the geometric median of the distribution (the colour that minimises the expected distance,
  the textbook point estimate for an error like CIEDE2000), plain and faded;
- the fade with a certainty pooled over a neighbourhood (colour that nothing around it
  supports fades further: the "isolated blob" rule of #13);
- test-time augmentation: the logits averaged with those of the mirrored frame, and also of a
  larger render.

Each row gives CIEDE2000 against grey overall (the ratio of the clip means, as the footage study),
for the sign-language webcam clips and for the rest, and the colourfulness against the truth's.
If every row lies on one line from "vivid and wrong" to "grey", decoding has no accuracy left to
give and only a better model can move the footage figure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pipelines"))

import evaluate

from filmcolor.frames import Frame
from filmcolor.infer.colorize import Colorizer
from filmcolor.metrics.image import colorfulness, delta_e_ciede2000, srgb_to_lab
from filmcolor.models import create_model

logger = logging.getLogger("frontier_study")

Decode = Callable[[dict], torch.Tensor]
"""A row: one sample (its logits ``(Q, h, w)`` under several keys) -> a/b ``(2, h, w)``."""


def webcam(name: str) -> bool:
    """The sign-language webcam clips: one camera, one room, a fifth of the clips."""
    return "asl_gestures" in name


def collect(clips: list[Path], frames: int, every: int, short: int, large: int) -> list[dict]:
    """Run the shipped model once per sampled frame (and on its mirror image, and at render size
    ``large``) and keep the logits, cropped to the picture; with the truth and the grey's error."""
    renders = {"base": Colorizer(create_model(), "cpu", 1, 256), "large": Colorizer(create_model(), "cpu", 1, large)}
    caught: list[torch.Tensor] = []
    for col in renders.values():
        bins = col.model.bins
        decode = bins.decode

        def keep(logits: torch.Tensor, *a, _decode=decode, **k) -> torch.Tensor:
            caught.append(logits.float().cpu())
            return _decode(logits, *a, **k)

        bins.decode = keep  # an instance attribute: only this study's colorizers see it

    def logits_of(col: Colorizer, luma: np.ndarray) -> torch.Tensor:
        caught.clear()
        ab = col.colorize_batch([Frame(index=0, luma=luma)])[0].ab
        return caught[0][0, :, : ab.shape[1], : ab.shape[2]]

    samples = []
    for n, p in enumerate(clips):
        for i, (f, truth) in enumerate(evaluate.clip_frames(p, frames, short)):
            if i % every:
                continue
            base = logits_of(renders["base"], f.luma)
            flipped = logits_of(renders["base"], np.ascontiguousarray(f.luma[:, ::-1])).flip(-1)
            big = F.interpolate(logits_of(renders["large"], f.luma)[None], size=base.shape[-2:],
                                mode="bilinear", align_corners=False)[0]
            lab_t = srgb_to_lab(truth.astype(np.float32) / 255)
            grey = srgb_to_lab(evaluate.grey_rgb(f.luma).astype(np.float32) / 255)
            samples.append({"clip": p.name, "luma": f.luma, "truth": lab_t, "cf_truth": colorfulness(truth),
                            "grey": float(delta_e_ciede2000(grey, lab_t).mean()),
                            "base": base, "flip": flipped, "large": big})
        logger.info("clip %d/%d %s", n + 1, len(clips), p.name)
    return samples


def score(samples: list[dict], decode: Decode) -> dict:
    """CIEDE2000 x grey (ratio of clip means: all, webcam, other) and colourfulness x truth."""
    ours, grey, cf, cf_t = defaultdict(list), defaultdict(list), [], []
    for s in samples:
        frame = Frame(index=0, luma=s["luma"], ab=np.ascontiguousarray(decode(s).numpy(), dtype=np.float32))
        rgb = evaluate.video_rgb(frame, "bilateral")
        ours[s["clip"]].append(float(delta_e_ciede2000(srgb_to_lab(rgb.astype(np.float32) / 255), s["truth"]).mean()))
        grey[s["clip"]].append(s["grey"])
        cf.append(colorfulness(rgb))
        cf_t.append(s["cf_truth"])

    def ratio(keep: Callable[[str], bool]) -> float:
        names = [c for c in ours if keep(c)]
        if not names:
            return float("nan")
        return float(np.mean([np.mean(ours[c]) for c in names]) / np.mean([np.mean(grey[c]) for c in names]))

    return {"all": ratio(lambda c: True), "webcam": ratio(webcam), "other": ratio(lambda c: not webcam(c)),
            "colorfulness": float(np.mean(cf) / np.mean(cf_t))}


def rows(bins: torch.nn.Module, film_fade: float) -> dict[str, Decode]:
    """The study's decodings of the shipped model's distribution (see the module doc)."""
    centres = bins.centres.float()
    with_norm = torch.cat([centres, centres.norm(dim=1, keepdim=True)], 1)
    temperature, gain = float(bins.temperature), float(bins.chroma_gain)

    def annealed(key: str = "base", fade: float = film_fade, gain: float | None = None) -> Decode:
        return lambda s: bins.decode(s[key][None], chroma_gain=gain, fade=fade)[0]

    def tta(*keys: str) -> Decode:
        return lambda s: bins.decode(torch.stack([s[k] for k in keys]).mean(0)[None], fade=film_fade)[0]

    def certainty(m: torch.Tensor) -> torch.Tensor:
        return (m[..., :2].norm(dim=-1) / m[..., 2].clamp(min=1e-6)).clamp(0, 1)

    def median(fade: float, t: float = 1.0, iterations: int = 20) -> Decode:
        def run(s: dict) -> torch.Tensor:
            p = F.softmax(s["base"].permute(1, 2, 0) / t, dim=-1)  # (h, w, Q)
            x = p @ centres
            for _ in range(iterations):  # Weiszfeld's iteration over the bins
                w = p / (x[..., None, :] - centres).norm(dim=-1).clamp(min=1e-3)
                x = (w @ centres) / w.sum(-1, keepdim=True)
            return (x * certainty(p @ with_norm)[..., None] ** fade).permute(2, 0, 1)
        return run

    def pooled(sigma: float, power: float) -> Decode:
        def run(s: dict) -> torch.Tensor:
            p = F.softmax(s["base"].permute(1, 2, 0) / temperature, dim=-1)
            m = p @ with_norm
            c = certainty(m)
            scale = (1 + (gain - 1) * c ** float(bins.gain_power)) * c**film_fade
            around = torch.from_numpy(cv2.GaussianBlur(m.numpy(), (0, 0), sigma, borderType=cv2.BORDER_REFLECT))
            return (m[..., :2] * (scale * certainty(around) ** power)[..., None]).permute(2, 0, 1)
        return run

    return {
        "photo decoding (fade 0)": annealed(fade=0.0),
        f"film default (fade {film_fade:g})": annealed(),
        "fade 12": annealed(fade=12.0),
        "fade 16": annealed(fade=16.0),
        "fade 32": annealed(fade=32.0),
        "vividness 2.5, fade 16": annealed(fade=16.0, gain=2.5),
        "vividness 3, fade 20": annealed(fade=20.0, gain=3.0),
        "vividness 4, fade 20": annealed(fade=20.0, gain=4.0),
        "geometric median": median(0.0),
        "geometric median, fade 4": median(4.0),
        "pooled certainty (3 cells)^4": pooled(3.0, 4.0),
        "pooled certainty (8 cells)^8": pooled(8.0, 8.0),
        "mirror TTA": tta("base", "flip"),
        "mirror + large render TTA": tta("base", "flip", "large"),
        "grey": lambda s: torch.zeros(2, *s["base"].shape[-2:]),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the study and print its Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=ROOT.parent / "shared/data/clips/colour")
    ap.add_argument("--frames", type=int, default=40, help="the first N frames of each clip")
    ap.add_argument("--every", type=int, default=10, help="score every N-th of them")
    ap.add_argument("--large", type=int, default=320, help="the larger render of the TTA row")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.clips.is_dir():
        raise SystemExit(f"no folder {args.clips}: point --clips at colour clips")
    torch.set_grad_enabled(False)
    samples = collect(evaluate.clip_files(args.clips), args.frames, args.every, 240, args.large)
    probe = Colorizer(create_model(), "cpu", 1, 256)
    _, film_fade = probe.footage_defaults()
    clips = {s["clip"] for s in samples}
    n_web = sum(webcam(c) for c in clips)
    print(f"{len(clips)} clips ({n_web} webcam), {len(samples)} frames; no temporal stages\n")
    print("| decoding | CIEDE2000 (x grey) | webcam clips | other clips | colourfulness (x truth) |")
    print("|---|---|---|---|---|")
    for name, decode in rows(probe.model.bins, film_fade).items():
        r = score(samples, decode)
        print(f"| {name} | {r['all']:.3f}x | {r['webcam']:.3f}x | {r['other']:.3f}x | {r['colorfulness']:.2f}x |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
