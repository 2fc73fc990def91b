"""Find, verify and load weights files. Never exits: every failure is a :class:`WeightsError`.

Search order for a model's default file: ``$FILMCOLOR_HOME``, the repository's ``weights/``
folder, then ``~/.cache/filmcolor``. An explicit ``--weights PATH`` bypasses the search.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

from filmcolor.errors import WeightsError
from filmcolor.models.base import ChromaModel, ModelCfg

logger = logging.getLogger("filmcolor")

REPO_WEIGHTS_DIR: Path = Path(__file__).resolve().parents[2] / "weights"
"""``weights/`` of the source tree (present for editable installs and source checkouts)."""


def search_dirs() -> list[Path]:
    """Directories searched for weights files, in order."""
    dirs = []
    if os.environ.get("FILMCOLOR_HOME"):
        dirs.append(Path(os.environ["FILMCOLOR_HOME"]).expanduser())
    dirs.append(REPO_WEIGHTS_DIR)
    dirs.append(Path.home() / ".cache" / "filmcolor")
    return dirs


def find_weights(filename: str) -> Path:
    """Locate ``filename`` in :func:`search_dirs`.

    Raises:
        WeightsError: not found anywhere (the message lists where it looked).
    """
    for d in search_dirs():
        p = d / filename
        if p.is_file():
            return p
    where = ", ".join(str(d) for d in search_dirs())
    raise WeightsError(f"weights file {filename!r} not found (looked in {where}); pass --weights PATH")


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_weights(path: str | Path) -> dict:
    """``torch.load`` a weights file safely (``weights_only=True``: no pickled code runs).

    Raises:
        WeightsError: missing, unreadable or not a weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt/foreign files
        raise WeightsError(f"cannot read weights {path}: not a PyTorch weights file ({e.__class__.__name__})") from e
    if not isinstance(state, dict):
        raise WeightsError(f"cannot read weights {path}: expected a state dict, got {type(state).__name__}")
    return state


def load_into(model: ChromaModel, cfg: ModelCfg, weights: str | Path | None) -> Path:
    """Load weights (explicit path or the model's default file) into ``model``.

    Returns:
        The path that was loaded.

    Raises:
        WeightsError: missing, corrupt, or made for another architecture.
    """
    path = Path(weights) if weights is not None else find_weights(str(cfg.weights))
    state = read_weights(path)
    arch = state.get("arch")
    if arch is not None and arch != cfg.name:
        raise WeightsError(f"weights {path} are for model {arch!r}, not {cfg.name!r}; use --model {arch}")
    try:
        model.load_weights(state)
    except (RuntimeError, KeyError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"weights {path} do not fit model {cfg.name!r}: {first}") from e
    logger.debug("loaded weights %s", path)
    return path
