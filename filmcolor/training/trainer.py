"""A resumable, deterministic training loop for the default colouriser.

Checkpoints (model, optimiser, step, class weights) are written atomically every
``checkpoint_every`` steps; batches and augmentation draw from generators seeded by
``(seed, step)``, so a run killed at any moment and resumed takes exactly the steps an
uninterrupted run would have taken.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from filmcolor.color.space import luma_to_lightness, rgb_to_lab
from filmcolor.models.effunet import EffUNet
from filmcolor.training.augment import film_grey
from filmcolor.training.data import build_cache, clip_draw_weights, sample_batch
from filmcolor.training.loss import (
    colorization_loss,
    estimate_prior,
    rebalance_weights,
    regression_loss,
)

logger = logging.getLogger("filmcolor")


@dataclass
class TrainConfig:
    """Every setting of a training run (the TOML file of ``pipelines/train.py`` fills it)."""

    sources: list[str] = field(default_factory=list)
    run_dir: str = "runs/default"
    init_weights: str | None = None  # fine-tune from a filmcolor weights file
    seed: int = 0
    steps: int = 3000
    batch_size: int = 16
    crop: int = 192
    # Fraction of the short side each square crop covers before it is resized to `crop`; a
    # range near 1 shows whole scenes at the scale inference renders them.
    crop_scale: tuple[float, float] = (0.35, 1.0)
    cache_size: int = 256
    holdout_every: int = 40
    lr: float = 1e-3
    encoder_lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup: int = 100
    min_lr_ratio: float = 0.05
    loss: str = "classification"  # or "regression" (the baseline)
    rebalance_lambda: float = 0.5
    rebalance_alpha: float = 0.5
    reg_weight: float = 0.5
    aug_strength: float = 1.0
    # Frames of colour clips under `sources`: one every `clip_every_s` seconds, at most
    # `clip_limit` per clip. `clip_share` is the fraction of each batch drawn from them (0: the
    # frames are drawn like photos, in proportion to their number). Photos are not footage:
    # footage is muted, white-balanced and compressed, and a few hundred frames among thousands
    # of photos would hardly be seen.
    clip_every_s: float = 2.0
    clip_limit: int = 12
    clip_share: float = 0.0
    checkpoint_every: int = 100
    # Exponential moving average of the weights (0: off). With small noisy batches the average
    # generalises better than the last iterate; export writes the average when it is on.
    ema_decay: float = 0.0
    threads: int = 0  # 0: torch default


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def make_batch(
    rgb: torch.Tensor, gen: torch.Generator, strength: float, out_stride: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input lightness ``(N, 1, H, W)``, target a/b ``(N, 2, H/s, W/s)``) from sRGB crops."""
    grey = film_grey(rgb, gen, strength)
    lightness = luma_to_lightness(grey)
    ab = rgb_to_lab(rgb)[:, 1:]
    ab = F.avg_pool2d(ab, out_stride)
    return lightness, ab


class Trainer:
    """Owns model, optimiser and data for one run directory.

    Args:
        cfg: the run's settings.
        model: an :class:`EffUNet` (built by the caller, so tests can pass a small one).
    """

    def __init__(self, cfg: TrainConfig, model: EffUNet) -> None:
        self.cfg = cfg
        self.model = model
        self.run_dir = Path(cfg.run_dir)
        enc = list(model.encoder.parameters())
        enc_ids = {id(p) for p in enc}
        rest = [p for p in model.parameters() if id(p) not in enc_ids]
        self.opt = torch.optim.AdamW(
            [
                {"params": enc, "lr": cfg.encoder_lr, "base_lr": cfg.encoder_lr},
                {"params": rest, "lr": cfg.lr, "base_lr": cfg.lr},
            ],
            weight_decay=cfg.weight_decay,
        )
        self.step = 0
        self.class_weights: torch.Tensor | None = None
        self.data: dict[str, list] | None = None
        # Each training image's probability of being drawn (None: uniform); set by load_data.
        self.draw_weights: np.ndarray | None = None
        # The weight average; started at the first step, so from the weights the run begins with
        # (fine-tuned, resumed from a checkpoint without one, or fresh).
        self.ema: dict[str, torch.Tensor] | None = None

    # -- data -----------------------------------------------------------------------------------
    def load_data(self, data: dict[str, list] | None = None) -> None:
        """Build or load the image cache (or take ``data`` directly, for tests)."""
        if data is None:
            data = build_cache(
                [Path(s) for s in self.cfg.sources],
                self.run_dir / "cache.pkl",
                cache_size=self.cfg.cache_size,
                holdout_every=self.cfg.holdout_every,
                clip_every_s=self.cfg.clip_every_s,
                clip_limit=self.cfg.clip_limit,
            )
        if not data["train"]:
            raise ValueError("no training images found in the sources")
        self.data = data
        self.draw_weights = clip_draw_weights(data["train_names"], self.cfg.clip_share)
        if self.cfg.loss == "classification" and self.class_weights is None:
            self.class_weights = self._class_weights()

    def _class_weights(self) -> torch.Tensor:
        gen = np.random.default_rng(self.cfg.seed + 999)
        sample = sample_batch(self.data["train"], min(256, 4 * len(self.data["train"])), 64, gen)
        ab = F.avg_pool2d(rgb_to_lab(sample)[:, 1:], 4)
        prior = estimate_prior(self.model.bins, [ab])
        return rebalance_weights(prior, self.cfg.rebalance_lambda, self.cfg.rebalance_alpha)

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "last.ckpt"

    def save(self) -> None:
        """Atomically write the full training state (write to .tmp, then rename)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "class_weights": self.class_weights,
            "ema": self.ema,
            "config": asdict(self.cfg),
        }
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.ckpt_path)

    def try_resume(self) -> bool:
        """Load ``last.ckpt`` if present; returns whether it did."""
        if not self.ckpt_path.exists():
            return False
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])
        self.class_weights = state["class_weights"]
        self.ema = state.get("ema") if self.cfg.ema_decay > 0 else None
        logger.info("resumed from %s at step %d", self.ckpt_path, self.step)
        return True

    # -- the loop -------------------------------------------------------------------------------
    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.random.Generator]:
        """Start step ``self.step``: the weight average begun, the learning rate set, and the
        step's crops ``(rgb, lightness, ab)`` with its seeded generator (for further draws)."""
        cfg = self.cfg
        assert self.data is not None, "call load_data() first"
        if cfg.ema_decay > 0 and self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        np_gen = np.random.default_rng([cfg.seed, self.step])
        t_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
        rgb = sample_batch(self.data["train"], cfg.batch_size, cfg.crop, np_gen, tuple(cfg.crop_scale),
                           weights=self.draw_weights)
        lightness, ab = make_batch(rgb, t_gen, cfg.aug_strength)
        f = lr_factor(self.step, cfg)
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * f
        return rgb, lightness, ab, np_gen

    def train_step(self) -> dict[str, float]:
        """One optimisation step with the batch and augmentation of ``self.step``."""
        cfg = self.cfg
        _, lightness, ab, _ = self.step_inputs()
        self.model.train()
        logits = self.model(lightness)
        if cfg.loss == "regression":
            loss = regression_loss(self.model.bins.expected(logits), ab)
            parts = {"reg": float(loss.detach())}
        else:
            loss, parts = colorization_loss(
                logits, ab, self.model.bins, self.class_weights, cfg.reg_weight
            )
        return self.finish_step(loss, parts, self.model.parameters())

    def finish_step(self, loss: torch.Tensor, parts: dict[str, float], params) -> dict[str, float]:
        """Back-propagate ``loss``, clip the gradients of ``params``, step, advance the step
        count and the weight average; returns ``parts`` with the loss added."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        self.opt.step()
        self.step += 1
        if self.ema is not None:
            self._update_ema()
        parts["loss"] = float(loss.detach())
        return parts

    @torch.no_grad()
    def _update_ema(self) -> None:
        # The decay ramps up as (1 + step) / (10 + step) so that the first steps of a run do not
        # pin the average to the starting weights.
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        for k, v in self.model.state_dict().items():
            e = self.ema[k]
            if v.is_floating_point():
                e.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                e.copy_(v)

    def export_model(self) -> EffUNet:
        """The model to ship: the weight average when EMA is on, else the trained weights."""
        if self.ema is not None:
            self.model.load_state_dict(self.ema)
        return self.model

    def fit(self, show_progress: bool = True) -> None:
        """Train until ``cfg.steps``, checkpointing every ``checkpoint_every`` steps and at the end."""
        from tqdm import tqdm

        bar = tqdm(
            total=self.cfg.steps, initial=self.step, disable=not show_progress, unit="step",
            dynamic_ncols=True,
        )
        ema = None
        t0 = time.time()
        start = self.step
        while self.step < self.cfg.steps:
            parts = self.train_step()
            ema = parts["loss"] if ema is None else 0.98 * ema + 0.02 * parts["loss"]
            ips = (self.step - start) * self.cfg.batch_size / max(1e-6, time.time() - t0)
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.3f}", img_s=f"{ips:.1f}")
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                self.save()
                logger.info("step %d loss %.4f (%s) %.1f img/s", self.step, ema, parts, ips)
        bar.close()


def export_weights(model: EffUNet, path: Path, meta: dict | None = None) -> None:
    """Write shippable weights: fp16 state dict, no optimiser state, with metadata; atomic."""
    sd = {
        k: (v.half() if v.is_floating_point() and not k.startswith("bins.") else v)
        for k, v in model.state_dict().items()
    }
    payload = {"format": "filmcolor-weights-1", "arch": model.cfg.name, "state_dict": sd}
    payload["meta"] = meta or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
