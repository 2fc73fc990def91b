"""Quantised a/b colour classes (Zhang et al. 2016) and annealed-mean decoding.

Plain L1/L2 regression of a/b averages the plausible colours of an object into brown. Predicting a
distribution over a/b bins keeps the modes apart; decoding with the *annealed mean* (the mean of
the distribution sharpened by a temperature T < 1) keeps colours vivid while staying spatially
coherent, which the mode alone does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from filmcolor.color.space import lab_to_rgb

GRID_STEP: float = 10.0
"""Width of an a/b bin in Lab units (Zhang et al. use 10)."""

GRID_LIMIT: float = 110.0
"""a/b bins cover [-GRID_LIMIT, GRID_LIMIT]."""


def in_gamut_centres(step: float = GRID_STEP, limit: float = GRID_LIMIT) -> torch.Tensor:
    """Centres ``(Q, 2)`` of the grid bins that some lightness renders inside the sRGB gamut.

    Deterministic (no data), so a weights file only has to record ``step`` and ``limit``.
    """
    c = torch.arange(-limit + step / 2, limit, step, dtype=torch.float64)
    a, b = torch.meshgrid(c, c, indexing="ij")
    ab = torch.stack([a.flatten(), b.flatten()], 1)  # (G, 2)
    lightness = torch.linspace(5, 95, 19, dtype=torch.float64)
    keep = torch.zeros(len(ab), dtype=torch.bool)
    for L in lightness:
        lab = torch.cat([torch.full((len(ab), 1), float(L), dtype=torch.float64), ab], 1)
        rgb = lab_to_rgb(lab.T.reshape(1, 3, -1, 1), clip=False).reshape(3, -1).T
        keep |= ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(1)
    return ab[keep].float()


class ABBins(torch.nn.Module):
    """The a/b class set: encode targets as soft labels, decode logits to a/b.

    Args:
        step: bin width.
        limit: grid half-range.
        sigma: std of the Gaussian soft-encoding, in Lab units.
        temperature: default annealed-mean temperature for decoding.
        chroma_gain: default chroma gain of decoding, applied where the hue is certain (see
            :meth:`decode`).
        gain_power: exponent of the hue certainty that weights the gain (0: the same gain
            everywhere; larger: only the surest pixels are boosted).
        fade_power: exponent of the hue certainty that scales every pixel's chroma (0: off, the
            default; see :meth:`decode`). A run setting, not a trained one: not saved with the
            weights.
    """

    def __init__(
        self,
        step: float = GRID_STEP,
        limit: float = GRID_LIMIT,
        sigma: float = 5.0,
        temperature: float = 0.38,
        chroma_gain: float = 1.0,
        gain_power: float = 1.0,
        fade_power: float = 0.0,
    ) -> None:
        super().__init__()
        self.step, self.limit, self.sigma = step, limit, sigma
        self.register_buffer("centres", in_gamut_centres(step, limit), persistent=False)
        # Temperature is a (persistent) buffer so a trained model ships the value chosen for it.
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        # Decoding settings are buffers too, chosen per trained model (pipelines/decode_study.py).
        self.register_buffer("chroma_gain", torch.tensor(float(chroma_gain)))
        self.register_buffer("gain_power", torch.tensor(float(gain_power)))
        # Set per run (films fade, photos do not), so kept out of the state dict: weights files
        # and their digests stay as they are.
        self.register_buffer("fade_power", torch.tensor(float(fade_power)), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Weights files written before the chroma gain existed decode as they always did (gain 1).
        state_dict.setdefault(prefix + "chroma_gain", torch.tensor(1.0))
        state_dict.setdefault(prefix + "gain_power", torch.tensor(1.0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def num_bins(self) -> int:
        """Number of classes Q."""
        return int(self.centres.shape[0])

    def encode(self, ab: torch.Tensor, k: int = 5) -> torch.Tensor:
        """Soft labels for a/b targets.

        Args:
            ab: ``(N, 2, H, W)`` in Lab units.
            k: number of nearest bins that receive weight.

        Returns:
            ``(N, Q, H, W)`` distributions (sum to 1 over Q).
        """
        n, _, h, w = ab.shape
        flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        d2 = torch.cdist(flat, self.centres.to(flat.dtype)) ** 2  # (P, Q)
        d2k, idx = d2.topk(k, dim=1, largest=False)
        wk = torch.exp(-d2k / (2 * self.sigma**2))
        wk = wk / wk.sum(1, keepdim=True)
        out = torch.zeros_like(d2).scatter_(1, idx, wk)
        return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)

    def nearest(self, ab: torch.Tensor) -> torch.Tensor:
        """Index ``(N, H, W)`` of the nearest bin to each a/b pixel."""
        flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        idx = torch.cdist(flat, self.centres.to(flat.dtype)).argmin(1)
        return idx.reshape(ab.shape[0], ab.shape[2], ab.shape[3])

    def decode(
        self,
        logits: torch.Tensor,
        temperature: float | None = None,
        chroma_gain: float | None = None,
        gain_weight: torch.Tensor | None = None,
        fade: float | None = None,
    ) -> torch.Tensor:
        """Annealed mean: ``(N, Q, H, W)`` logits -> ``(N, 2, H, W)`` a/b.

        ``temperature`` 1 gives the plain mean (muted), towards 0 the mode (vivid, patchy).
        ``chroma_gain`` > 1 scales the chroma up where the distribution agrees on one hue: the
        mean of a distribution is paler than its members, and more so the more its hues disagree.
        The certainty ``|E[ab]| / E[|ab|]`` is 1 where all the mass has one hue and falls to 0
        where opposite hues cancel, so unsure pixels (where a vivid guess would often be the
        wrong colour) stay muted. A gain below 1 makes every pixel paler alike (0: grey).
        ``fade`` > 0 (default: ``fade_power``) multiplies every pixel's chroma by
        ``certainty ** fade``: colour the model is unsure of fades towards grey, colour it is
        sure of stays. Where a wrong colour costs more than no colour (films, whose true colours
        are often muted) this buys much more accuracy per unit of colour lost than a uniform
        gain below 1 (#13; README, "Colour on footage").
        ``gain_weight`` ``(N, 1, H, W)`` in [0, 1] applies the gain and the fade only that much
        per pixel (0: the plain annealed mean there), in the same single pass over the
        distribution.
        """
        t = float(self.temperature) if temperature is None else float(temperature)
        g = float(self.chroma_gain) if chroma_gain is None else float(chroma_gain)
        q = float(self.fade_power) if fade is None else float(fade)
        # Softmax over the last axis of an NHWC view, then one matmul: 2x faster on a CPU than a
        # softmax over dim 1 of a channels-last tensor followed by an einsum.
        p = F.softmax(logits.permute(0, 2, 3, 1).float() / max(t, 1e-3), dim=-1)
        w = None if gain_weight is None else gain_weight.permute(0, 2, 3, 1).float()
        if q > 0:
            return self._decode_faded(p, g, q, w)
        if g <= 1.0:
            ab = p @ self.centres.to(p.dtype)
            scale = g if w is None else 1 - (1 - g) * w
            return (ab * scale).permute(0, 3, 1, 2)
        ab, certainty = self._mean_and_certainty(p)
        boost = (g - 1) * certainty ** float(self.gain_power)
        ab = ab * (1 + (boost if w is None else boost * w))
        return ab.permute(0, 3, 1, 2)

    def _mean_and_certainty(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NHWC probabilities -> the mean a/b ``(N, H, W, 2)`` and the hue certainty
        ``|E[ab]| / E[|ab|]`` ``(N, H, W, 1)``, from one matmul."""
        c = self.centres.to(p.dtype)
        m = p @ torch.cat([c, c.norm(dim=1, keepdim=True)], 1)  # a, b, E[|ab|]
        ab = m[..., :2]
        return ab, (ab.norm(dim=-1, keepdim=True) / m[..., 2:].clamp(min=1e-6)).clamp(0, 1)

    def _decode_faded(self, p: torch.Tensor, g: float, q: float, w: torch.Tensor | None) -> torch.Tensor:
        """:meth:`decode` with a fade: NHWC probabilities ``p`` -> ``(N, 2, H, W)`` a/b.

        A path of its own so that decoding without a fade stays bit-identical to before."""
        ab, certainty = self._mean_and_certainty(p)
        gain = 1 + (g - 1) * certainty ** float(self.gain_power) if g > 1.0 else torch.full_like(certainty, g)
        scale = gain * certainty**q
        if w is not None:
            scale = 1 - (1 - scale) * w
        return (ab * scale).permute(0, 3, 1, 2)

    def expected(self, logits: torch.Tensor) -> torch.Tensor:
        """Differentiable plain mean (T = 1), used by the regression term of the loss."""
        p = F.softmax(logits.float(), dim=1)
        return torch.einsum("nqhw,qc->nchw", p, self.centres.to(p.dtype))
