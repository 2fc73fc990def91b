"""The evaluation pipeline on generated photos: the aggregate equals the per-photo table."""

from __future__ import annotations

import argparse
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


@pytest.mark.slow
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


def _colour_clip(path: Path, n: int = 14) -> Path:
    """A small colour clip: a still two-colour background and a moving coloured square."""
    import av

    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=24)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv444p"
        st.options = {"crf": "0"}
        rng = np.random.default_rng(0)
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8)
            # The truth's own colour wobbles a little (as a real video's does), so its still
            # pixels have a flicker to compare with.
            img[:, :32] = (200, 60 + rng.integers(0, 4), 40)
            img[:, 32:] = (40, 90, 200 - rng.integers(0, 4))
            img[10:26, 4 + 2 * i : 20 + 2 * i] = (240, 220, 30)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in st.encode(frame):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path


def test_clip_evaluation_reports_footage_metrics(tmp_path):
    """Clips are scored per clip and overall: CIEDE2000 against grey, still-pixel flicker
    against the truth's, CDC, edges, colourfulness; the truth scores 0 against itself (#13)."""
    clip = _colour_clip(tmp_path / "c.mp4")
    col = Colorizer(create_model("tiny"), device="cpu", render_size=64)
    variants = evaluate.clip_variants(
        argparse.Namespace(variant=["win:temporal=window,upsample=bilinear", "flow:vividness=2"],
                           smoothing=0.5)
    )
    assert variants["win"]["temporal"] == "window" and variants["flow"]["vividness"] == 2.0
    res = evaluate.eval_clips(col, [clip], max_frames=12, short=48, variants=variants)
    assert res["n"] == 1 and set(res["per_clip"]) == {"c.mp4"}
    per = res["per_clip"]["c.mp4"]
    assert per["truth"]["ciede2000"] == pytest.approx(0.0, abs=1e-9)
    assert per["truth"]["edge"] == pytest.approx(0.0, abs=1e-9)
    assert per["grey"]["flicker"] == pytest.approx(0.0, abs=1e-4)  # grey never changes colour
    assert per["grey"]["ciede2000"] > 10  # strong colours turned grey
    for name in ("win", "flow"):
        r = res[name]
        assert r["ciede2000_ratio_vs_grey"] == pytest.approx(
            per[name]["ciede2000"] / per["grey"]["ciede2000"])
        assert r["flicker_ratio_vs_truth"] == pytest.approx(
            per[name]["flicker"] / per["truth"]["flicker"])
        assert r["worst_clip_flicker_ratio"] == pytest.approx(r["flicker_ratio_vs_truth"])
        assert r["ms_temporal"] > 0 and r["ms_merge"] > 0
    # A larger vividness gives more colour (same model, same frames).
    assert res["flow"]["colorfulness"] > 0
    table = "\n".join(evaluate.clip_markdown(res))
    assert "| flow |" in table and "c.mp4" in table


def test_clip_variant_errors():
    with pytest.raises(SystemExit, match="unknown key"):
        evaluate.clip_variants(argparse.Namespace(variant=["x:speed=2"], smoothing=0.5))


def _textured_photos(tmp_path: Path) -> list[Path]:
    """Photos whose halves differ in texture as well as colour (stripes | checks), so the
    encoder's features can tell them apart, as in real pictures."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:96, 0:128]
    stripes = (np.sin(xx * 0.8) > 0)[..., None]
    checks = (((xx // 6) + (yy // 6)) % 2 == 0)[..., None]
    files = []
    for i in range(3):
        left, right = rng.integers(40, 215, 3), rng.integers(40, 215, 3)
        img = np.where(xx[..., None] < 64, left * (0.7 + 0.3 * stripes), right * (0.7 + 0.3 * checks))
        p = tmp_path / f"t{i}.png"
        cv2.imwrite(str(p), img.astype(np.uint8))
        files.append(p)
    return files


@pytest.mark.slow
def test_guided_photo_rows_and_the_reference_mode(tmp_path):
    """Each guidance mode is a row of its own; the truth as reference (cropped and flipped)
    brings the colour much closer than no guidance; the guidance is the same on every run."""
    files = _textured_photos(tmp_path)
    col = Colorizer(create_model("filmcolor-lite0"), device="cpu", render_size=96)
    res = evaluate.eval_photos(col, files, sheet_n=1, out=tmp_path, modes=("none", "reference", "hints"))
    assert res["rows"] == ["ours", "ours+reference", "ours+hints"]
    for row in res["rows"]:
        assert res[row]["ciede2000_ratio_vs_grey"] == pytest.approx(res[row]["ciede2000"] / res["grey"]["ciede2000"])
    assert res["ours+reference"]["ciede2000"] < 0.8 * res["ours"]["ciede2000"]
    with open(tmp_path / "photos.csv") as f:
        rows = list(csv.DictReader(f))
    assert _mean(rows, "ciede2000_ours+hints") == pytest.approx(res["ours+hints"]["ciede2000"], abs=1e-3)
    truth = cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)
    a = evaluate.photo_guide(truth, "hints", files[0].name, col)
    b = evaluate.photo_guide(truth, "hints", files[0].name, col)
    assert len(a.hints) == evaluate.PHOTO_HINTS
    assert [(h.x, h.y, h.a, h.b) for h in a.hints] == [(h.x, h.y, h.a, h.b) for h in b.hints]


@pytest.mark.slow
def test_clip_reference_variant_takes_one_reference_per_shot(tmp_path):
    clip = _colour_clip(tmp_path / "c.mp4")
    col = Colorizer(create_model("filmcolor-lite0"), device="cpu", render_size=64)
    variants = evaluate.clip_variants(
        argparse.Namespace(variant=["ours:", "ref:guide=reference"], smoothing=0.5))
    assert variants["ref"]["guide"] == "reference" and variants["ours"]["guide"] == "none"
    res = evaluate.eval_clips(col, [clip], max_frames=12, short=48, variants=variants)
    assert res["ref"]["ciede2000"] < res["ours"]["ciede2000"]
    assert col.guide is None  # the evaluation leaves the stage unguided
    with pytest.raises(SystemExit, match="guide is none or reference"):
        evaluate.clip_variants(argparse.Namespace(variant=["x:guide=hints"], smoothing=0.5))
