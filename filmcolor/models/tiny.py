"""A tiny random-init colouriser of a few kB, for tests only (never the default).

It lets pipeline, chunking and resume tests run on any machine in seconds with no weights file.
Its output is deterministic for a given seed, smooth, and clearly coloured, so tests can assert
that chroma appears and that smoothing changes it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.registry import register_model


class TinyColorizer(ChromaModel):
    """Two strided convs and a tanh head: L -> a/b at 1/4 resolution, in [-60, 60]."""

    def __init__(self, cfg: ModelCfg, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 2, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        """a/b ``(N, 2, H/4, W/4)`` for lightness ``(N, 1, H, W)``."""
        x = lightness / 50.0 - 1.0
        return 60.0 * torch.tanh(self.conv2(F.relu(self.conv1(x))))


@register_model(
    ModelCfg(
        name="tiny",
        description="random-init 100-parameter model for tests (not a real colouriser)",
        render_size=64,
        stride=4,
        test_only=True,
    )
)
def tiny(seed: int = 0) -> TinyColorizer:
    """Factory of the test-only model."""
    from filmcolor.models.registry import get_model_cfg

    return TinyColorizer(get_model_cfg("tiny"), seed=seed)
