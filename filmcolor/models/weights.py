"""Find, read and load weights files. Never exits: every failure is a :class:`WeightsError`.

Where filmcolor looks, in order: an explicit ``--weights PATH`` (no search), ``$FILMCOLOR_HOME``,
the shipped ``weights/`` folder, then ``~/.cache/filmcolor`` (:mod:`filmcolor.models.paths`).
Third-party files (#5) are also held to their published sha256, or to the one first accepted
where none is published (:mod:`filmcolor.models.trust`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from filmcolor.errors import WeightsError
from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.catalog import catalog_entry, entry_for_file
from filmcolor.models.digests import sha256sum
from filmcolor.models.paths import search_dirs
from filmcolor.models.trust import check_before_load, note_loaded

logger = logging.getLogger("filmcolor")

SAFE_GLOBALS: tuple[type, ...] = (slice,)
"""Python types a weights file may contain besides tensors and containers (fastai's lr slices)."""

_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL (\S+)")


def find_weights(filename: str) -> Path:
    """Locate ``filename`` in :func:`~filmcolor.models.paths.search_dirs`.

    Raises:
        WeightsError: not found anywhere (the message lists where it looked).
    """
    for d in search_dirs():
        p = d / filename
        if p.is_file():
            return p
    where = ", ".join(str(d) for d in search_dirs())
    hint = "pass --weights PATH"
    entry = entry_for_file(filename)
    if entry is not None:  # third-party weights are never shipped: say how to get them (#5)
        hint = f"get it with `filmcolor weights fetch {entry.model}` ({entry.url}) or {hint}"
    raise WeightsError(f"weights file {filename!r} not found (looked in {where}); {hint}")


def _safe_load(path: Path) -> object:
    # weights_only: tensors and plain containers only, never pickled code. fastai checkpoints
    # (DeOldify, #5) also hold `slice` objects in their optimiser state; nothing else is allowed.
    ser = torch.serialization
    if hasattr(ser, "safe_globals"):  # torch >= 2.5 (pyproject's floor): scoped to this load
        with ser.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    # An environment that pinned torch 2.4 anyway: the process-wide list. It only ever gains
    # `slice`, a plain value type, so widening it for the whole process allows nothing unsafe.
    ser.add_safe_globals(list(SAFE_GLOBALS))
    return torch.load(path, map_location="cpu", weights_only=True)


def read_weights(path: str | Path) -> dict:
    """``torch.load`` a weights file safely (``weights_only=True``: no pickled code runs).

    Raises:
        WeightsError: missing, unreadable or not a weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        state = _safe_load(path)
    except Exception as e:  # torch raises many types for corrupt/foreign files
        refused = _GLOBAL_RE.search(str(e))
        if refused:
            raise WeightsError(
                f"refusing to load {path}: it holds a pickled object ({refused.group(1)}) that "
                "safe loading does not run"
            ) from e
        raise WeightsError(
            f"cannot read weights {path}: not a PyTorch weights file ({e.__class__.__name__})"
        ) from e
    if not isinstance(state, dict):
        raise WeightsError(
            f"cannot read weights {path}: expected a state dict, got {type(state).__name__}"
        )
    return state


def load_into(model: ChromaModel, cfg: ModelCfg, weights: str | Path | None) -> Path:
    """Load weights (explicit path or the model's default file) into ``model``.

    Returns:
        The path that was loaded.

    Raises:
        WeightsError: missing, corrupt, or made for another architecture.
    """
    path = Path(weights) if weights is not None else find_weights(str(cfg.weights))
    entry = catalog_entry(cfg.name)
    digest = None
    if entry is not None:
        # Published digest first (hashing is cached by path, size and mtime): a released-name
        # file that is not the release fails here, before a long load.
        digest = check_before_load(path, entry)
    # A wrong or corrupt third-party file: the one line also names the file that was expected.
    expected = f"; expected {entry.expected()}" if entry is not None else ""
    try:
        state = read_weights(path)
    except WeightsError as e:
        raise WeightsError(f"{e}{expected}") from e.__cause__
    arch = state.get("arch")
    if arch is not None and arch != cfg.name:
        raise WeightsError(
            f"weights {path} are for model {arch!r}, not {cfg.name!r}; use --model {arch}"
        )
    try:
        model.load_weights(state)
    except (RuntimeError, KeyError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(
            f"weights {path} do not fit model {cfg.name!r}: {first}{expected}"
        ) from e
    if entry is not None:  # only a file that loaded is recorded as accepted
        note_loaded(path, entry, digest)
    # Kept on the model, so a job's manifest records the digest of the file that was loaded
    # (hashing the path again could read another file, and costs 900 MB for DeOldify's).
    model.weights_sha256 = digest if digest is not None else sha256sum(path)
    logger.debug("loaded weights %s", path)
    return path
