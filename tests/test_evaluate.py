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
import evaluate


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


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows]))


def test_photo_table_matches_the_aggregate(tmp_path):
    files = _photos(tmp_path)
    col = Colorizer(create_model("tiny"), device="cpu", render_size=64)
    res = evaluate.eval_photos(col, files, sheet_n=1, out=tmp_path)
    with open(tmp_path / "photos.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["p0.png", "p1.png", "p2.png"]
    assert res["n"] == 3
    assert _mean(rows, "ciede2000") == pytest.approx(res["ours"]["ciede2000"], abs=1e-3)
    assert _mean(rows, "ciede2000_grey") == pytest.approx(res["grey"]["ciede2000"], abs=1e-3)
    assert _mean(rows, "colorfulness_truth") == pytest.approx(res["colorfulness_truth"], abs=1e-2)
    # Two flat colour halves of random colours: grey is far from the truth.
    assert res["grey"]["ciede2000"] > 5
    assert res["grey"]["colorfulness"] == pytest.approx(0.0, abs=1e-6)


def test_photo_groups_summarise_by_name_prefix(tmp_path):
    import photo_groups

    path = tmp_path / "photos.csv"
    path.write_text(
        "file,ciede2000,ciede2000_grey,psnr,psnr_grey,colorfulness,colorfulness_truth\n"
        "src__a__1.jpg,4,8,0,0,10,20\n"
        "src__a__2.jpg,2,8,0,0,30,20\n"
        "src__b__1.jpg,9,9,0,0,5,50\n"
        "loose.jpg,1,2,0,0,0,10\n"
    )
    got = {g["group"]: g for g in photo_groups.summarize(path)}
    assert set(got) == {"src__a", "src__b", "(other)"}
    assert got["src__a"]["n"] == 2
    assert got["src__a"]["ciede2000_ratio_vs_grey"] == pytest.approx(6 / 16)
    assert got["src__a"]["colorfulness_ratio"] == pytest.approx(40 / 40)
    assert got["src__b"]["ciede2000_ratio_vs_grey"] == pytest.approx(1.0)
    assert got["(other)"]["colorfulness_ratio"] == pytest.approx(0.0)
