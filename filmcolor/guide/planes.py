"""Guidance as the network sees it: a/b and a confidence on the model's a/b grid.

Both kinds of guidance end up in the same three planes at stride 4 of the render, ``(a, b) *
confidence / AB_SCALE`` and the confidence itself (0: no guidance there, 1: the user is sure):

- a reference still is matched to each frame by the encoder's features (:func:`transfer`): each
  grid cell of the frame takes the colour of the reference cells whose features are closest,
  with a confidence that falls as the best match gets worse, so what the reference does not show
  gets no colour from it;
- a hint is a disc of its colour at confidence 1 (:func:`paint_hints`).

The guidance head of the model (:class:`filmcolor.models.effunet.GuideHead`) learned from these
planes, made from the truth, how far to trust them and how far a colour spreads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

AB_SCALE: float = 110.0
"""a/b are divided by this in the guidance planes (the gamut's reach is about 110)."""

MATCH_K: int = 4
"""Reference cells averaged per frame cell (the closest ones, softmax-weighted)."""

MATCH_TAU: float = 0.03
"""Softmax temperature over the cosine similarities of those cells."""

CONF_LOW: float = 0.55
"""Best cosine similarity at and below which a match carries no confidence."""

CONF_HIGH: float = 0.85
"""Best cosine similarity at and above which a match carries full confidence."""


def match_features(feats: list[torch.Tensor]) -> torch.Tensor:
    """Matching descriptors ``(N, C, H/8, W/8)`` from the encoder's features at strides 4..32.

    The stride-8 features (edges, textures) and the stride-16 ones (parts of objects) are each
    normalised, joined and normalised again, so that both count alike in a cosine similarity.
    """
    f8, f16 = feats[1].float(), feats[2].float()
    a = F.normalize(f8, dim=1)
    b = F.normalize(F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False), dim=1)
    return F.normalize(torch.cat([a, b], 1), dim=1).contiguous()


@dataclass
class Exemplar:
    """A colour reference ready for matching: one descriptor and one a/b per usable cell.

    Attributes:
        keys: ``(C, M)`` unit descriptors.
        ab: ``(M, 2)`` mean a/b of each cell, in Lab units.
    """

    keys: torch.Tensor
    ab: torch.Tensor

    @staticmethod
    def from_maps(desc: torch.Tensor, ab: torch.Tensor, valid: torch.Tensor | None = None) -> Exemplar:
        """From descriptors ``(C, h, w)``, a/b ``(2, H, W)`` (pooled to ``(h, w)`` here) and an
        optional ``(h, w)`` mask of the cells to keep (the unpadded area)."""
        c, h, w = desc.shape
        ab_small = F.adaptive_avg_pool2d(ab[None].float(), (h, w))[0]
        keys = desc.reshape(c, h * w)
        vals = ab_small.reshape(2, h * w).T
        if valid is not None:
            keep = valid.reshape(-1).bool()
            keys, vals = keys[:, keep], vals[keep]
        return Exemplar(keys.contiguous(), vals.contiguous())


def transfer(
    desc: torch.Tensor, exemplar: Exemplar, k: int = MATCH_K, tau: float = MATCH_TAU
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour each cell of frames ``desc (N, C, h, w)`` from an exemplar.

    Returns a/b ``(N, 2, h, w)`` and confidence ``(N, 1, h, w)`` in [0, 1].
    """
    n, c, h, w = desc.shape
    q = desc.reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    sims = q @ exemplar.keys.to(q.dtype)  # (N, hw, M)
    k = min(k, sims.shape[-1])
    top = sims.topk(k, dim=-1)
    weights = F.softmax(top.values / tau, dim=-1)
    ab = (weights[..., None] * exemplar.ab.to(q.dtype)[top.indices]).sum(-2)  # (N, hw, 2)
    conf = ((top.values[..., 0] - CONF_LOW) / (CONF_HIGH - CONF_LOW)).clamp(0, 1)
    return ab.transpose(1, 2).reshape(n, 2, h, w), conf.reshape(n, 1, h, w)


def to_planes(ab: torch.Tensor, conf: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Guidance planes ``(N, 3, *size)`` from a/b ``(N, 2, h, w)`` and confidence ``(N, 1, h, w)``."""
    if ab.shape[-2:] != tuple(size):
        ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        conf = F.interpolate(conf, size=size, mode="bilinear", align_corners=False)
    return torch.cat([ab * conf / AB_SCALE, conf], 1)


HINT_SPREAD: float = 0.3
"""Reach of a hint's region search, relative to the width (the sigma of a Gaussian falloff)."""


def spread_hints(
    planes: torch.Tensor,
    desc: torch.Tensor,
    points: list[tuple[float, float, float, float, float]],
    spread: float = HINT_SPREAD,
) -> torch.Tensor:
    """Carry hints over the regions they land on, in place, before they are painted.

    A hint marks a spot; the spot's descriptor (``desc (C, h8, w8)`` of the frame) finds the
    cells like it nearby: each gets the hint's colour with a confidence that rises with the
    similarity (as a reference match's does) and falls with the distance (a Gaussian of
    ``spread`` widths), so a hint on a coat colours the coat, not every dark thing in the
    picture. Where several hints reach a cell, the surest one gives its colour. Cells with
    surer guidance already in ``planes`` (a reference match) keep it.
    """
    if not points:
        return planes
    _, h, w = planes.shape
    c, h8, w8 = desc.shape
    grid = torch.tensor([[[[2 * x - 1, 2 * y - 1] for x, y, *_ in points]]], dtype=desc.dtype)
    keys = F.normalize(F.grid_sample(desc[None], grid, mode="bilinear", align_corners=False)[0, :, 0], dim=0)
    sims = keys.T @ desc.reshape(c, h8 * w8)  # (P, h8 * w8)
    sims = F.interpolate(sims.reshape(1, -1, h8, w8), size=(h, w), mode="bilinear", align_corners=False)[0]
    like = ((sims - CONF_LOW) / (CONF_HIGH - CONF_LOW)).clamp(0, 1)
    ys = ((torch.arange(h, dtype=torch.float32) + 0.5) / h)[:, None]
    xs = ((torch.arange(w, dtype=torch.float32) + 0.5) / w)[None, :]
    near = torch.stack([
        torch.exp(-((xs - x) ** 2 + ((ys - y) * h / w) ** 2) / (2 * spread**2)) for x, y, *_ in points
    ])
    conf, best = (like * near).max(0)
    ab = torch.tensor([[a, b] for _, _, a, b, _ in points], dtype=torch.float32)[best].permute(2, 0, 1)
    take = conf > planes[2]
    planes[0] = torch.where(take, ab[0] * conf / AB_SCALE, planes[0])
    planes[1] = torch.where(take, ab[1] * conf / AB_SCALE, planes[1])
    planes[2] = torch.where(take, conf, planes[2])
    return planes


def paint_hints(
    planes: torch.Tensor, points: list[tuple[float, float, float, float, float]]
) -> torch.Tensor:
    """Paint hints into guidance planes ``(3, h, w)`` in place and return them.

    ``points`` are ``(x, y, a, b, radius)`` with x, y and the radius relative to the width and
    height (top-left origin). A hint replaces whatever guidance was under it and covers at least
    the one cell it falls in.
    """
    _, h, w = planes.shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    for x, y, a, b, r in points:
        # Distances in units of the width, so a radius is round on screen.
        d2 = (xs[None, :] - x) ** 2 + ((ys[:, None] - y) * h / w) ** 2
        disc = d2 <= r * r
        cx, cy = min(w - 1, int(x * w)), min(h - 1, int(y * h))
        disc[cy, cx] = True
        planes[0][disc] = a / AB_SCALE
        planes[1][disc] = b / AB_SCALE
        planes[2][disc] = 1.0
    return planes
