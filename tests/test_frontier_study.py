"""The decoding-frontier study (#13): its scoring and its decodings on constructed samples."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from filmcolor.metrics.image import colorfulness, delta_e_ciede2000, srgb_to_lab
from filmcolor.models.abbins import ABBins
from tests.scripts import load_pipeline


def _study():
    return load_pipeline("frontier_study")


def _bins() -> ABBins:
    return ABBins(temperature=0.65, chroma_gain=1.5)


def _sample(clip: str, bins: ABBins, hot: int, luma_level: float = 0.55) -> dict:
    """A 32x48 frame whose truth is the colour of bin ``hot`` and whose logits put nearly all
    their mass on that bin (a model that is sure, and right)."""
    h, w = 32, 48
    luma = np.full((h, w), luma_level, np.float32)
    lab = np.zeros((h, w, 3), np.float32)
    lab[..., 0] = 100 * luma_level
    lab[..., 1:] = bins.centres[hot].numpy()
    truth = (np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1) * 255 + 0.5).astype(np.uint8)
    lab_t = srgb_to_lab(truth.astype(np.float32) / 255)
    grey = srgb_to_lab(np.repeat((luma * 255 + 0.5).astype(np.uint8)[..., None], 3, 2).astype(np.float32) / 255)
    logits = torch.full((bins.num_bins, h // 4, w // 4), -20.0)
    logits[hot] = 20.0
    return {"clip": clip, "luma": luma, "truth": lab_t, "cf_truth": colorfulness(truth),
            "grey": float(delta_e_ciede2000(grey, lab_t).mean()),
            "base": logits, "flip": logits.clone(), "large": logits.clone()}


@pytest.fixture(scope="module")
def study():
    return _study()


def test_grey_scores_one_and_a_right_sure_colour_beats_it(study) -> None:
    bins = _bins()
    hot = int(bins.nearest(torch.tensor([[[[20.0]], [[30.0]]]])).item())  # a warm, moderate colour
    samples = [_sample("cam__asl_gestures__a.mkv", bins, hot), _sample("other__b.mp4", bins, hot, 0.45)]
    rows = study.rows(bins, film_fade=8.0)
    grey = study.score(samples, rows["grey"])
    assert grey["all"] == pytest.approx(1.0) and grey["webcam"] == pytest.approx(1.0)
    assert grey["colorfulness"] < 0.02
    # Sure of the right colour: every decoding comes close to the truth, far below grey, and
    # the fade takes nothing away where the certainty is 1.
    # (The annealed rows carry the vividness gain of 1.5 here, hence their larger error.)
    got = {name: study.score(samples, rows[name]) for name in
           ("film default (fade 8)", "fade 32", "geometric median", "mirror TTA")}
    for name, r in got.items():
        assert r["all"] < 0.45, name
        assert 0.6 < r["colorfulness"] < 1.7, name
    assert got["fade 32"]["all"] == pytest.approx(got["film default (fade 8)"]["all"], rel=1e-6)
    assert got["geometric median"]["all"] < 0.25 and got["geometric median"]["colorfulness"] == pytest.approx(1, abs=0.1)


def test_the_decodings_of_an_unsure_distribution(study) -> None:
    """Mass split between a warm and a cool hue: the fade makes it paler the higher its power,
    and the geometric median lands on the bin with the larger share, not between the two."""
    bins = _bins()
    warm = int(bins.nearest(torch.tensor([[[[25.0]], [[35.0]]]])).item())
    cool = int(bins.nearest(torch.tensor([[[[-10.0]], [[-30.0]]]])).item())
    s = _sample("x__y.mp4", bins, warm)
    s["base"][:] = -20.0
    s["base"][warm], s["base"][cool] = 2.0, 1.5
    rows = study.rows(bins, film_fade=8.0)
    norm = {name: float(rows[name](s).norm(dim=0).mean()) for name in
            ("photo decoding (fade 0)", "film default (fade 8)", "fade 16", "fade 32")}
    values = list(norm.values())
    assert all(a > b for a, b in itertools.pairwise(values)), norm
    median = rows["geometric median"](s)[:, 0, 0]
    assert torch.allclose(median, bins.centres[warm], atol=0.5)
    assert rows["grey"](s).abs().max() == 0
