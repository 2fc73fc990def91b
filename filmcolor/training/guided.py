"""Training of the guidance head, with guidance sampled from the truth.

The automatic model is frozen (its encoder and decoder run without gradients) and only the
guidance head learns, so without guidance the shipped model is exactly what it was. Each sample
of a batch gets one kind of guidance, drawn per step from seeded generators (a killed run resumes
to the same steps, as :class:`~filmcolor.training.trainer.Trainer` does):

- a **reference**: the same picture after a crop of 70-90 % of each side, a flip, a change of
  scale and a mild perspective warp (another angle of the same scene), matched to the sample by
  the encoder's features as at inference; or, for a share of the samples, the reference of
  another picture, so that the head learns not to trust a match blindly;
- **hints**: 1 to 32 points at random places with the truth's mean colour over a 5x5-pixel
  patch, as discs of 0 to 2 cells;
- both;
- nothing but a reference that matches poorly (its confidence mostly zero).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from filmcolor.color.space import rgb_to_lab
from filmcolor.guide.planes import Exemplar, match_features, paint_hints, to_planes, transfer
from filmcolor.models.effunet import EffUNet
from filmcolor.training.loss import colorization_loss
from filmcolor.training.trainer import TrainConfig, Trainer

logger = logging.getLogger("filmcolor")


@dataclass
class GuidedConfig(TrainConfig):
    """Settings of a guidance-head run (TOML ``[train]`` plus these)."""

    p_reference: float = 0.4
    p_hints: float = 0.4
    # The rest of the samples get both a reference and hints.
    p_other_reference: float = 0.2  # of the reference samples: another picture's reference
    max_hints: int = 32
    ref_size: int = 224


def reference_view(patch: np.ndarray, gen: np.random.Generator, size: int) -> np.ndarray:
    """Another view of an RGB uint8 ``patch``: a crop of 70-90 % of each side, a flip, a mild
    perspective warp, resized to ``size`` x ``size``."""
    h, w = patch.shape[:2]
    ch, cw = int(h * gen.uniform(0.7, 0.9)), int(w * gen.uniform(0.7, 0.9))
    y, x = int(gen.integers(0, h - ch + 1)), int(gen.integers(0, w - cw + 1))
    src = np.float32([[x, y], [x + cw, y], [x + cw, y + ch], [x, y + ch]])
    # Each corner moves by up to 6 % of the side: another camera position, not another scene.
    jitter = gen.uniform(-0.06, 0.06, size=(4, 2)) * np.float32([cw, ch])
    src = (src + jitter).astype(np.float32)
    dst = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    m = cv2.getPerspectiveTransform(src, dst)
    view = cv2.warpPerspective(patch, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    if gen.random() < 0.5:
        view = view[:, ::-1]
    return np.ascontiguousarray(view)


def hint_points(
    ab_full: torch.Tensor, gen: np.random.Generator, count: int
) -> list[tuple[float, float, float, float, float]]:
    """``count`` hints ``(x, y, a, b, radius)`` from a true a/b image ``(2, H, W)``: the colour
    is the mean over a 5x5-pixel patch, the radius 0 to 2 grid cells (stride 4)."""
    _, h, w = ab_full.shape
    out = []
    for _ in range(count):
        cy, cx = int(gen.integers(2, h - 2)), int(gen.integers(2, w - 2))
        a, b = ab_full[:, cy - 2 : cy + 3, cx - 2 : cx + 3].mean((1, 2)).tolist()
        radius = float(gen.integers(0, 3)) * 4.0 / w
        out.append(((cx + 0.5) / w, (cy + 0.5) / h, a, b, radius))
    return out


class GuidedTrainer(Trainer):
    """A :class:`Trainer` whose optimiser holds only the guidance head."""

    def __init__(self, cfg: GuidedConfig, model: EffUNet) -> None:
        super().__init__(cfg, model)
        for p in model.parameters():
            p.requires_grad_(False)
        head = list(model.guide_head.parameters())
        for p in head:
            p.requires_grad_(True)
        self.opt = torch.optim.AdamW(
            [{"params": head, "lr": cfg.lr, "base_lr": cfg.lr}], weight_decay=cfg.weight_decay
        )

    def make_guides(
        self, rgb: torch.Tensor, ab4: torch.Tensor, desc: torch.Tensor, gen: np.random.Generator
    ) -> torch.Tensor:
        """Guidance planes ``(N, 3, h4, w4)`` for a batch of truth crops ``rgb (N, 3, H, W)``."""
        cfg: GuidedConfig = self.cfg  # type: ignore[assignment]
        n = rgb.shape[0]
        size4 = ab4.shape[-2:]
        kinds = gen.choice(3, size=n, p=[cfg.p_reference, cfg.p_hints, 1 - cfg.p_reference - cfg.p_hints])
        patches = (rgb.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        views = np.stack([reference_view(p, gen, cfg.ref_size) for p in patches])
        vt = torch.from_numpy(views).permute(0, 3, 1, 2).float().div_(255.0)
        lab = rgb_to_lab(vt)
        with torch.no_grad():
            rdesc = match_features(self.model.encode(lab[:, :1]))
        other = gen.random(n) < cfg.p_other_reference
        guides = torch.zeros(n, 3, *size4)
        ab_full = rgb_to_lab(rgb)[:, 1:]
        for i in range(n):
            if kinds[i] in (0, 2):
                j = (i + 1 + int(gen.integers(n - 1))) % n if other[i] and n > 1 else i
                ex = Exemplar.from_maps(rdesc[j], lab[j, 1:])
                ab, conf = transfer(desc[i : i + 1], ex)
                guides[i] = to_planes(ab, conf, size4)[0]
            if kinds[i] in (1, 2):
                count = int(np.exp(gen.uniform(0, np.log(cfg.max_hints + 1))))
                paint_hints(guides[i], hint_points(ab_full[i], gen, max(1, count)))
        return guides

    def train_step(self) -> dict[str, float]:
        """One step: frozen automatic model, guidance from the truth, head updated."""
        cfg = self.cfg
        rgb, lightness, ab4, np_gen = self.step_inputs()
        self.model.eval()  # frozen BatchNorm statistics: the automatic model must not move
        with torch.no_grad():
            feats = self.model.encode(lightness)
            logits0, dec = self.model.decode(feats)
            desc = match_features(feats)
        guides = self.make_guides(rgb, ab4, desc, np_gen)
        self.model.guide_head.train()
        logits = self.model.guided_logits(logits0, dec, guides)
        loss, parts = colorization_loss(logits, ab4, self.model.bins, self.class_weights, cfg.reg_weight)
        return self.finish_step(loss, parts, self.model.guide_head.parameters())

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Only the head is averaged: an average of the frozen weights would round them apart
        # from the automatic model's, which must stay bit-identical.
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        for k, v in self.model.guide_head.state_dict().items():
            self.ema["guide_head." + k].mul_(d).add_(v.detach(), alpha=1 - d)


def guided_error(model: EffUNet, rgb: torch.Tensor, guides: torch.Tensor) -> float:
    """Mean |a/b error| of the plain mean decode with ``guides``, for quick checks in logs."""
    lightness = rgb_to_lab(rgb)[:, :1]
    ab4 = F.avg_pool2d(rgb_to_lab(rgb)[:, 1:], 4)
    with torch.no_grad():
        ab = model.bins.expected(model(lightness, guides))
    return float((ab - ab4).abs().mean())
