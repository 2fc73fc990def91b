"""Train (or fine-tune) filmcolor's default colouriser.

    python pipelines/train.py pipelines/train.toml            # start or resume the run
    python pipelines/train.py pipelines/train.toml --export weights/filmcolor-lite0.pt

The run directory holds ``last.ckpt``; running the same command again resumes exactly where a
killed run stopped. ``--export`` writes the shippable fp16 weights from the last checkpoint.
To fine-tune on your own archive's colour photos or clips, point ``sources`` at them and
``init_weights`` at the shipped weights (see README, "Fine-tuning on your own material").
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

import torch

from filmcolor.models import create_model
from filmcolor.training.guided import GuidedConfig, GuidedTrainer
from filmcolor.training.trainer import TrainConfig, Trainer, export_weights


def load_config(path: Path, overrides: list[str]) -> TrainConfig:
    """Read a TOML file (``[train]`` table or top level) plus ``key=value`` overrides.

    ``guided = true`` makes it a run of the guidance head (:class:`GuidedConfig`)."""
    data = tomllib.loads(path.read_text())
    data = dict(data.get("train", data))
    config_cls = GuidedConfig if data.pop("guided", False) else TrainConfig
    base = path.parent
    for ov in overrides:
        k, _, v = ov.partition("=")
        data[k] = tomllib.loads(f"v = {v}")["v"] if v else None
    known = {f.name for f in fields(config_cls)}
    unknown = set(data) - known
    if unknown:
        raise SystemExit(f"unknown config keys: {sorted(unknown)}")
    # Relative paths in the file are relative to the repository root (the file's parent's parent).
    root = base.parent
    data["sources"] = [str((root / s).resolve()) for s in data.get("sources", [])]
    for key in ("run_dir", "init_weights"):
        if data.get(key):
            data[key] = str((root / data[key]).resolve())
    return config_cls(**data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override settings")
    ap.add_argument("--export", type=Path, help="write fp16 weights from the last checkpoint")
    ap.add_argument("--temperature", type=float, help="annealed-mean temperature stored on export")
    ap.add_argument("--chroma-gain", type=float, help="decoding chroma gain stored on export (pipelines/decode_study.py)")
    ap.add_argument("--gain-power", type=float, help="hue-certainty exponent of the chroma gain stored on export")
    ap.add_argument("--no-ema", action="store_true", help="export the last weights, not their moving average")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(args.config, args.set)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = create_model("filmcolor-lite0", pretrained=False, pretrained_encoder=True)
    trainer = (GuidedTrainer if isinstance(cfg, GuidedConfig) else Trainer)(cfg, model)
    resumed = trainer.try_resume()
    if not resumed and cfg.init_weights:
        state = torch.load(cfg.init_weights, map_location="cpu", weights_only=True)
        model.load_weights(state)
        logging.getLogger("train").info("fine-tuning from %s", cfg.init_weights)
    if args.export:
        if not resumed:
            raise SystemExit(f"no checkpoint in {cfg.run_dir}")
        model = trainer.model if args.no_ema else trainer.export_model()
        if args.temperature is not None:
            model.bins.temperature.fill_(args.temperature)
        if args.chroma_gain is not None:
            model.bins.chroma_gain.fill_(args.chroma_gain)
        if args.gain_power is not None:
            model.bins.gain_power.fill_(args.gain_power)
        meta = {"step": trainer.step, "ema": trainer.ema is not None and not args.no_ema, "config": {f.name: getattr(cfg, f.name) for f in fields(cfg)}}
        meta["config"]["sources"] = [Path(s).name for s in cfg.sources]
        meta["config"]["run_dir"] = Path(cfg.run_dir).name
        export_weights(model, args.export, meta)
        print(f"wrote {args.export} (step {trainer.step})")
        return 0
    model.to(memory_format=torch.channels_last)
    trainer.load_data()
    trainer.fit(show_progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
