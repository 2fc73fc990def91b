"""Where filmcolor keeps weights: the one place that reads ``$FILMCOLOR_HOME``.

Weights files are looked up, in order, in ``$FILMCOLOR_HOME`` (when set), the shipped
``weights/`` folder, then ``~/.cache/filmcolor``. Files filmcolor writes itself (downloads, the
sha256 store) go to :func:`home_dir`: ``$FILMCOLOR_HOME``, else ``~/.cache/filmcolor``.

Imports nothing from filmcolor and no torch, so every other weights module can build on it.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV: str = "FILMCOLOR_HOME"
"""Environment variable naming the user's filmcolor folder."""


def _shipped_weights_dir() -> Path:
    # A source checkout or editable install reads the repository's weights/ directly; a regular
    # install (wheel) carries the same files as the data package filmcolor._weights.
    here = Path(__file__).resolve()
    source_tree = here.parents[2] / "weights"
    if (source_tree / "weights.toml").is_file():
        return source_tree
    return here.parents[1] / "_weights"


REPO_WEIGHTS_DIR: Path = _shipped_weights_dir()
"""The weights shipped with filmcolor: ``weights/`` of the source tree, or its installed copy."""


def env_home() -> Path | None:
    """``$FILMCOLOR_HOME`` as a path (``~`` expanded), or None when it is unset or empty."""
    # Read on every call, not at import: tests and long-lived callers change the environment.
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else None


def user_cache_dir() -> Path:
    """``~/.cache/filmcolor``: the fallback home, and the last folder searched for weights."""
    return Path.home() / ".cache" / "filmcolor"


def home_dir() -> Path:
    """Where filmcolor writes (downloads, the sha256 store): ``$FILMCOLOR_HOME`` if set, else
    ``~/.cache/filmcolor``."""
    return env_home() or user_cache_dir()


def search_dirs() -> list[Path]:
    """Directories searched for weights files, in order."""
    home = env_home()
    return [*([home] if home else []), REPO_WEIGHTS_DIR, user_cache_dir()]
