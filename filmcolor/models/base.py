"""The interface every colouriser implements, whatever its architecture or origin.

A :class:`ChromaModel` takes Lab lightness and returns Lab a/b. Everything else (resizing to the
render size, batching, devices, smoothing, merging with the full-resolution source luminance) is
the pipeline's job, so a third-party model only has to translate its own pre/post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class ModelCfg:
    """Static facts about a registered model (the ``default_cfg`` of timm).

    Attributes:
        name: registry key.
        description: one line for ``filmcolor models``.
        render_size: default size (pixels) of the short side the model sees.
        stride: input sides are padded to a multiple of this.
        square: the model wants a square input (aspect is stretched, as DeOldify does).
        weights: default weights file name (looked up in ``weights/`` and the cache dirs), or None.
        test_only: registered for tests; never the default and hidden from casual listings.
        skip_init: when weights are loaded, build on the meta device and skip the random init
            (every parameter is then overwritten; saves seconds on 200M-parameter models).
    """

    name: str
    description: str
    render_size: int = 256
    stride: int = 32
    square: bool = False
    weights: str | None = None
    test_only: bool = False
    skip_init: bool = False
    extra: dict = field(default_factory=dict)


class ChromaModel(nn.Module):
    """Base class: ``predict_ab(L) -> ab``.

    Subclasses set :attr:`cfg` and implement :meth:`predict_ab`. Inputs are batches of Lab
    lightness ``(N, 1, H, W)`` in [0, 100]; outputs are Lab a/b ``(N, 2, h, w)`` at any resolution
    (the caller resizes), typically lower than the input's, since chroma is low-frequency.
    """

    cfg: ModelCfg

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_weights(self, state: dict) -> None:
        """Load a filmcolor weights payload (``{'state_dict': ..., ...}``) strictly."""
        sd = state.get("state_dict", state)
        self.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
