"""The scripts of ``pipelines/`` loaded as modules, so that tests can call their parts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def load_pipeline(name: str) -> ModuleType:
    """``pipelines/<name>.py`` as a module (the scripts import each other, e.g. ``evaluate``,
    so their folder goes on ``sys.path`` first)."""
    if str(PIPELINES) not in sys.path:
        sys.path.insert(0, str(PIPELINES))
    spec = importlib.util.spec_from_file_location(name, PIPELINES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
