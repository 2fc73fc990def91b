"""One registry for every colouriser (timm's ``@register_model`` pattern).

Each architecture module defines small factory functions decorated with :func:`register_model`;
:func:`create_model` builds a model by name and loads its weights.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

from filmcolor.errors import ModelNotFoundError
from filmcolor.models.base import ChromaModel, ModelCfg

logger = logging.getLogger("filmcolor")

_REGISTRY: dict[str, tuple[Callable[..., ChromaModel], ModelCfg]] = {}

DEFAULT_MODEL: str = "filmcolor-lite0"
"""The model used when the user names none: the project's own trained generator."""


def register_model(cfg: ModelCfg) -> Callable[[Callable[..., ChromaModel]], Callable[..., ChromaModel]]:
    """Register a factory ``fn(**kwargs) -> ChromaModel`` under ``cfg.name``."""

    def deco(fn: Callable[..., ChromaModel]) -> Callable[..., ChromaModel]:
        if cfg.name in _REGISTRY:
            warnings.warn(f"model {cfg.name!r} registered twice; the last one wins", stacklevel=2)
        _REGISTRY[cfg.name] = (fn, cfg)
        return fn

    return deco


def list_models(include_test: bool = False) -> list[ModelCfg]:
    """Registered model configs, sorted by name (test-only models hidden unless asked)."""
    return [c for _, (_, c) in sorted(_REGISTRY.items()) if include_test or not c.test_only]


def get_model_cfg(name: str) -> ModelCfg:
    """The :class:`ModelCfg` of a registered model.

    Raises:
        ModelNotFoundError: no such model.
    """
    try:
        return _REGISTRY[name][1]
    except KeyError:
        names = ", ".join(c.name for c in list_models())
        raise ModelNotFoundError(f"unknown model {name!r}; available: {names}") from None


def create_model(
    name: str = DEFAULT_MODEL,
    weights: str | Path | None = None,
    pretrained: bool = True,
    **kwargs: object,
) -> ChromaModel:
    """Build a registered model in eval mode on the CPU.

    Args:
        name: registry key (``filmcolor models`` lists them).
        weights: explicit weights file; otherwise the model's default file is looked up.
        pretrained: load weights at all (``False`` gives a random-init model, for tests).
        **kwargs: passed to the factory; ``None`` values are dropped so the model's defaults hold.

    Raises:
        ModelNotFoundError: unknown name.
        WeightsError: the weights file is missing, corrupt or does not fit.
    """
    cfg = get_model_cfg(name)
    fn = _REGISTRY[name][0]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    load = pretrained and (weights is not None or cfg.weights is not None)
    if load and cfg.skip_init:
        import torch

        # Random init of a large third-party model (#5) costs seconds and is overwritten by the
        # strict load anyway: build without storage, then allocate it uninitialised.
        with torch.device("meta"):
            model = fn(**kwargs)
        model = model.to_empty(device="cpu")
    else:
        model = fn(**kwargs)
    if load:
        from filmcolor.models.weights import load_into

        load_into(model, cfg, weights)
    return model.eval()
