"""Footage colour measured without flattering the model: clips scored by models that never saw them.

The colour clips (``../shared/data/clips/colour``) are also training material (their README lists
"training frames"), so a model trained on their frames cannot be scored on them. This study splits
them by source (the text before the first ``__`` of a file name: one camera, one scene, one
uploader) into two folds, and each fold is scored by a model fine-tuned with the *other* fold's
frames. Every clip is then scored by a model that has seen neither it nor anything filmed with it;
the figures estimate what the shipped model (trained on every clip) does on footage it never saw.

    python pipelines/footage_cv.py folds                      # runs/cv/intel, runs/cv/other
    python pipelines/train.py pipelines/train_footage.toml --set run_dir='"runs/cv_train_intel"' \\
        sources='["../shared/data/photos/train","../shared/data/photos/train_people","runs/cv/intel"]'
    (the same for "other"; export each with --export runs/cv_train_FOLD.pt)
    python pipelines/footage_cv.py score --fold runs/cv/intel=runs/cv_train_other.pt \\
        --fold runs/cv/other=runs/cv_train_intel.pt --baseline runs/stage3.pt --frames 40

``score`` runs the footage study's scoring (``evaluate.eval_clips``: first ``--frames`` frames,
240 px short side, grey by the clip's BT.601 luma, default film settings of each model file) and
prints the same table as ``pipelines/footage_study.py``, with the baseline (a model trained on no
clip at all, scored on the same frames) as a row of its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pipelines"))

import evaluate

CLIPS = ROOT.parent / "shared/data/clips/colour"


def source_of(name: str) -> str:
    """A clip's source: the text before the first ``__`` (the whole stem when there is none)."""
    return name.split("__", 1)[0] if "__" in name else Path(name).stem


def make_folds(clips: Path, held: list[str], out: Path) -> dict[str, list[str]]:
    """Link the clips into ``out/<held source>`` (the held sources together, named by the first)
    and ``out/other`` (every other source). Links, not copies: the clips stay where they are."""
    files = evaluate.clip_files(clips)
    folds: dict[str, list[str]] = {held[0].split("-")[0]: [], "other": []}
    names = list(folds)
    for p in files:
        fold = names[0] if source_of(p.name) in held else "other"
        folds[fold].append(p.name)
        d = out / fold
        d.mkdir(parents=True, exist_ok=True)
        link = d / p.name
        if not link.is_symlink():
            link.symlink_to(p.resolve())
    return folds


def score(folds: list[tuple[Path, Path]], baseline: Path | None, frames: int) -> dict:
    """Score each fold's clips with its model (and every clip with ``baseline``); one table."""
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models import create_model

    base = evaluate.clip_variants(argparse.Namespace(variant=["default"], smoothing=0.5))["default"]
    per_clip: dict[str, dict] = {}
    runs = [("cross-validated", d, w) for d, w in folds]
    if baseline is not None:
        runs += [("baseline", d, baseline) for d, _ in folds]
    for name, clip_dir, weights in runs:
        colorizer = Colorizer(create_model(weights=weights), "auto", 8, 256)
        files = evaluate.clip_files(clip_dir)
        res = evaluate.eval_clips(colorizer, files, frames, 240, {name: base})
        for clip, scores in res["per_clip"].items():
            per_clip.setdefault(clip, {}).update(scores)
        evaluate.logger.info("%s: %s scored with %s", name, clip_dir, weights)
    variants = {n: base for n in (["baseline"] if baseline else []) + ["cross-validated"]}
    return evaluate.aggregate_clips(dict(sorted(per_clip.items())), variants, max_frames=frames,
                                    short_side=240, grey_input="luma",
                                    folds={str(d): str(w) for d, w in folds},
                                    baseline=str(baseline) if baseline else None)


def main(argv: list[str] | None = None) -> int:
    """``folds`` or ``score`` (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("folds", help="link the clips into two folds by source")
    f.add_argument("--clips", type=Path, default=CLIPS)
    f.add_argument("--held", action="append", help="source(s) of the first fold (default intel-sample-videos)")
    f.add_argument("--out", type=Path, default=ROOT / "runs/cv")
    s = sub.add_parser("score", help="score each fold with the model that did not see it")
    s.add_argument("--fold", action="append", required=True, metavar="CLIP_DIR=WEIGHTS")
    s.add_argument("--baseline", type=Path, help="also score every clip with these weights")
    s.add_argument("--frames", type=int, default=40)
    s.add_argument("--out", type=Path, default=ROOT / "runs/footage_cv")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "folds":
        if not args.clips.is_dir():
            raise SystemExit(f"no folder {args.clips}: point --clips at colour clips")
        folds = make_folds(args.clips, args.held or ["intel-sample-videos"], args.out)
        for name, clips in folds.items():
            print(f"{args.out / name}: {len(clips)} clips from {len({source_of(c) for c in clips})} sources")
        return 0
    pairs = []
    for spec in args.fold:
        d, sep, w = spec.partition("=")
        if not sep or not Path(d).is_dir() or not Path(w).is_file():
            raise SystemExit(f"--fold {spec}: want CLIP_DIR=WEIGHTS, both existing")
        pairs.append((Path(d), Path(w)))
    res = score(pairs, args.baseline, args.frames)
    print(evaluate.write_clip_report(res, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
