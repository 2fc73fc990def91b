"""Loss of the default model: class-rebalanced cross-entropy over a/b bins plus a small regression term.

Cross-entropy over quantised a/b (Zhang et al. 2016) keeps the distinct plausible colours of an
object apart instead of averaging them to brown, as L1/L2 regression does. Rebalancing weights rare
(saturated) colours up; fully rebalanced training (lambda 0.5, power 1) gave vivid but often wrong
colours in our trials, so the weights are softened (power ``alpha`` < 1). The regression term on the
distribution's mean pulls the decoded colour towards the truth where the classes are unsure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from filmcolor.models.abbins import ABBins


def rebalance_weights(
    prior: torch.Tensor, lam: float = 0.5, alpha: float = 0.5
) -> torch.Tensor:
    """Per-class weights ``((1 - lam) * prior + lam / Q) ** -alpha``, normalised so that
    their expectation under the prior is 1."""
    q = prior.numel()
    w = ((1 - lam) * prior + lam / q) ** (-alpha)
    return w / (prior * w).sum()


def estimate_prior(bins: ABBins, ab_batches: list[torch.Tensor]) -> torch.Tensor:
    """Empirical class frequencies (nearest-bin counts) over a list of ``(N, 2, H, W)`` a/b maps."""
    counts = torch.zeros(bins.num_bins, dtype=torch.float64)
    for ab in ab_batches:
        idx = bins.nearest(ab).flatten()
        counts += torch.bincount(idx, minlength=bins.num_bins).double()
    counts += 1.0  # no class has exactly zero probability
    return (counts / counts.sum()).float()


def colorization_loss(
    logits: torch.Tensor,
    ab_true: torch.Tensor,
    bins: ABBins,
    class_weights: torch.Tensor | None,
    reg_weight: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rebalanced soft-label cross-entropy + ``reg_weight`` x smooth-L1 of the mean a/b.

    Args:
        logits: ``(N, Q, h, w)``.
        ab_true: ``(N, 2, h, w)`` true a/b at the logits' resolution.
        bins: the class set.
        class_weights: ``(Q,)`` rebalancing weights, or None for plain cross-entropy.
        reg_weight: weight of the regression term (0 disables it).

    Returns:
        The scalar loss and its parts (floats) for logging.
    """
    target = bins.encode(ab_true)
    logp = F.log_softmax(logits.float(), dim=1)
    ce = -(target * logp).sum(1)  # (N, h, w)
    if class_weights is not None:
        ce = ce * class_weights[bins.nearest(ab_true)]
    ce = ce.mean()
    total = ce
    parts = {"ce": float(ce.detach())}
    if reg_weight > 0:
        reg = F.smooth_l1_loss(bins.expected(logits) / 10.0, ab_true / 10.0)
        total = total + reg_weight * reg
        parts["reg"] = float(reg.detach())
    return total, parts


def regression_loss(ab_pred: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Plain smooth-L1 regression of a/b: the baseline the classification loss is measured against."""
    return F.smooth_l1_loss(ab_pred / 10.0, ab_true / 10.0)
