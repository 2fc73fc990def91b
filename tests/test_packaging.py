"""A regular (non-editable) install carries what filmcolor needs at run time."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
@pytest.mark.slow
def test_wheel_ships_the_default_weights_and_catalogue(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, cwd=tmp_path, capture_output=True,
    )
    (wheel,) = tmp_path.glob("filmcolor-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = zf.read("filmcolor/_weights/filmcolor-lite0.pt")
    assert shipped == (ROOT / "weights" / "filmcolor-lite0.pt").read_bytes()
    assert {"filmcolor/_weights/weights.toml", "filmcolor/_weights/MODEL_CARD.md",
            "filmcolor/models/weights.py", "filmcolor/py.typed"} <= names
    # Every package of the source tree is in the wheel (the list in pyproject.toml is explicit).
    for init in (ROOT / "filmcolor").rglob("__init__.py"):
        assert init.relative_to(ROOT).as_posix() in names
