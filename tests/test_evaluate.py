"""The evaluation pipeline on generated photos: the aggregate equals the per-photo table."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from filmcolor.infer.colorize import Colorizer
from filmcolor.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
import evaluate  # noqa: E402


def _photos(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    files = []
    for i in range(3):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :32] = rng.integers(0, 255, 3)
        img[:, 32:] = rng.integers(0, 255, 3)
        p = tmp_path / f"p{i}.png"
        cv2.imwrite(str(p), img)
        files.append(p)
    return files


def test_photo_table_matches_the_aggregate(tmp_path):
    files = _photos(tmp_path)
    col = Colorizer(create_model("tiny"), device="cpu", render_size=64)
    res = evaluate.eval_photos(col, files, sheet_n=1, out=tmp_path)
    with open(tmp_path / "photos.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["p0.png", "p1.png", "p2.png"]
    assert res["n"] == 3
    mean = lambda key: np.mean([float(r[key]) for r in rows])  # noqa: E731
    assert mean("ciede2000") == pytest.approx(res["ours"]["ciede2000"], abs=1e-3)
    assert mean("ciede2000_grey") == pytest.approx(res["grey"]["ciede2000"], abs=1e-3)
    assert mean("colorfulness_truth") == pytest.approx(res["colorfulness_truth"], abs=1e-2)
    # Two flat colour halves of random colours: grey is far from the truth.
    assert res["grey"]["ciede2000"] > 5
    assert res["grey"]["colorfulness"] == pytest.approx(0.0, abs=1e-6)
