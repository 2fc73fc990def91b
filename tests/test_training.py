"""Training: loss, augmentation, one step lowers the loss, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from filmcolor.models import create_model
from filmcolor.models.abbins import ABBins
from filmcolor.training.augment import film_grey
from filmcolor.training.loss import colorization_loss, rebalance_weights
from filmcolor.training.trainer import TrainConfig, Trainer, export_weights


def _images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((80, 96, 3), np.uint8)
        img[:40] = rng.integers(0, 255, 3)  # two flat colour regions: learnable
        img[40:] = rng.integers(0, 255, 3)
        out.append(img)
    return {"train": out, "val": [], "train_names": [], "val_names": []}


def _trainer(tmp_path, **kw):
    torch.manual_seed(0)
    model = create_model("filmcolor-lite0", pretrained=False)
    cfg = TrainConfig(run_dir=str(tmp_path), batch_size=2, crop=64, steps=4, warmup=1, **kw)
    t = Trainer(cfg, model)
    t.load_data(_images())
    return t


def test_rebalance_weights_expectation_one():
    prior = torch.tensor([0.7, 0.2, 0.1])
    w = rebalance_weights(prior, lam=0.5, alpha=1.0)
    assert float((prior * w).sum()) == pytest.approx(1.0)
    assert w[2] > w[1] > w[0]  # rare colours weigh more


def test_loss_is_lower_for_right_colour():
    bins = ABBins()
    ab = torch.full((1, 2, 4, 4), 30.0)
    right = torch.log(bins.encode(ab) + 1e-6)
    wrong = torch.log(bins.encode(-ab) + 1e-6)
    l_right, _ = colorization_loss(right, ab, bins, None)
    l_wrong, _ = colorization_loss(wrong, ab, bins, None)
    assert float(l_right) < float(l_wrong)


def _logits_for(bins: ABBins, ab_values: list[tuple[float, float]]) -> torch.Tensor:
    """Logits (1, Q, 1, n) that put all mass on the bins nearest the given a/b, one per pixel,
    or, for a pair of values in one entry, half on each."""
    cols = []
    for v in ab_values:
        pts = [v] if isinstance(v[0], (int, float)) else list(v)
        p = torch.zeros(bins.num_bins)
        for a, b in pts:
            p[bins.nearest(torch.tensor([[[[a]], [[b]]]]))[0, 0, 0]] += 1.0 / len(pts)
        cols.append(torch.log(p + 1e-12))
    return torch.stack(cols, 1)[None, :, None, :]


def test_chroma_gain_scales_only_certain_hues():
    bins = ABBins(temperature=1.0)
    c = bins.centres
    one = tuple(c[bins.nearest(torch.tensor([[[[40.0]], [[20.0]]]]))[0, 0, 0]].tolist())
    opp = (one, (-one[0], -one[1]))  # two opposite hues, equal mass: the mean is grey
    near = (one, (one[0], one[1] + 10.0))  # two neighbouring bins of one hue
    logits = _logits_for(bins, [one, opp, near])
    plain = bins.decode(logits)
    boosted = bins.decode(logits, chroma_gain=1.5)
    # All the mass on one bin: certainty 1, chroma x1.5 with the hue unchanged.
    assert torch.allclose(boosted[0, :, 0, 0], plain[0, :, 0, 0] * 1.5, atol=1e-3)
    # Opposite hues cancel: still grey, no boost.
    assert float(boosted[0, :, 0, 1].abs().max()) < 1e-3
    # Neighbouring bins of one hue: certainty just below 1, a boost just below 1.5.
    ratio = float(boosted[0, :, 0, 2].norm() / plain[0, :, 0, 2].norm())
    assert 1.4 < ratio < 1.5
    # A higher certainty power boosts the not-quite-certain pixel less.
    bins.gain_power.fill_(4.0)
    ratio4 = float(bins.decode(logits, chroma_gain=1.5)[0, :, 0, 2].norm() / plain[0, :, 0, 2].norm())
    assert 1.0 < ratio4 < ratio
    # Gain 1 is the plain annealed mean; below 1 every pixel is paler alike, 0 is grey.
    assert torch.equal(bins.decode(logits, chroma_gain=1.0), plain)
    assert torch.allclose(bins.decode(logits, chroma_gain=0.5), plain * 0.5)
    assert float(bins.decode(logits, chroma_gain=0.0).abs().max()) == 0.0


def test_fade_keeps_sure_colour_and_greys_unsure_colour():
    """The fade (#13) scales each pixel's chroma by its hue certainty to the fade power: a
    one-hue pixel keeps its colour (boosted by the gain as before), a pixel whose hues disagree
    loses more of it the larger the power, and no fade is bit-identical to the old decoding."""
    bins = ABBins(temperature=1.0)
    c = bins.centres
    one = tuple(c[bins.nearest(torch.tensor([[[[40.0]], [[20.0]]]]))[0, 0, 0]].tolist())
    # Mostly one hue with a quarter of the mass on a hue at right angles: certainty about 0.8.
    side = (-one[1] * 0.5, one[0] * 0.5)
    mixed = (one, one, one, side)
    logits = _logits_for(bins, [one, mixed])
    plain = bins.decode(logits)
    for gain in (1.0, 1.5, 0.7):
        before = bins.decode(logits, chroma_gain=gain)
        assert torch.equal(bins.decode(logits, chroma_gain=gain, fade=0.0), before)
        faded = bins.decode(logits, chroma_gain=gain, fade=8.0)
        # Certain pixel: untouched by the fade.
        torch.testing.assert_close(faded[0, :, 0, 0], before[0, :, 0, 0], atol=1e-3, rtol=1e-4)
        # Unsure pixel: the same hue, paler by its certainty ** 8.
        m = (torch.softmax(logits[0, :, 0, 1], 0)[:, None] * c).sum(0)
        certainty = float(m.norm() / (torch.softmax(logits[0, :, 0, 1], 0) * c.norm(dim=1)).sum())
        assert 0.6 < certainty < 0.95
        ratio = float(faded[0, :, 0, 1].norm() / before[0, :, 0, 1].norm())
        assert ratio == pytest.approx(certainty**8, rel=0.02)
        cos = float(torch.nn.functional.cosine_similarity(faded[0, :, 0, 1], plain[0, :, 0, 1], dim=0))
        assert cos > 0.999
    # The buffer is the default; a larger power fades the unsure pixel more.
    bins.fade_power.fill_(16.0)
    assert float(bins.decode(logits)[0, :, 0, 1].norm()) < float(
        bins.decode(logits, fade=8.0)[0, :, 0, 1].norm())
    # A run setting, not a trained one: weights files do not carry it.
    assert "fade_power" not in bins.state_dict()


def test_weights_without_chroma_gain_load_with_gain_one(tmp_path):
    model = create_model("filmcolor-lite0", pretrained=False)
    sd = {k: v for k, v in model.state_dict().items() if k not in ("bins.chroma_gain", "bins.gain_power")}
    model.bins.chroma_gain.fill_(1.7)
    model.load_weights({"state_dict": sd})  # strict: a file from before the gain existed
    assert float(model.bins.chroma_gain) == 1.0
    model.bins.chroma_gain.fill_(1.25)
    model.bins.gain_power.fill_(3.0)
    export_weights(model, tmp_path / "w.pt")
    other = create_model("filmcolor-lite0", pretrained=False)
    other.load_weights(torch.load(tmp_path / "w.pt", weights_only=True))
    assert float(other.bins.chroma_gain) == 1.25  # stored in full precision, not fp16
    assert float(other.bins.gain_power) == 3.0


def test_film_grey_orthochromatic_darkens_red():
    red = torch.zeros(64, 3, 16, 16)
    red[:, 0] = 1.0
    g0 = film_grey(red, torch.Generator().manual_seed(0), strength=0.0)
    assert g0.shape == (64, 1, 16, 16)
    # Strength 0 is the plain luminance grey of pure red (CIE Y 0.2126 -> sRGB ~0.50).
    assert float(g0.mean()) == pytest.approx(0.498, abs=0.01)
    g1 = film_grey(red, torch.Generator().manual_seed(0), strength=1.0)
    assert float(g1.amin(dim=(1, 2, 3)).min()) < 0.3  # some samples are red-blind film
    assert 0.0 <= float(g1.min()) and float(g1.max()) <= 1.0


@pytest.mark.slow
def test_one_step_lowers_loss_on_tiny_batch(tmp_path):
    t = _trainer(tmp_path, lr=3e-3, encoder_lr=1e-3)
    t.cfg.seed = 0
    losses = []
    for _ in range(6):
        t.step = 0  # same batch each time: the loss on it must go down
        losses.append(t.train_step()["loss"])
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_resume_gives_identical_next_step(tmp_path):
    a = _trainer(tmp_path / "a")
    a.train_step()
    a.train_step()
    a.save()
    expected = a.train_step()
    b = _trainer(tmp_path / "a")  # a fresh process would build it the same way
    assert b.try_resume() and b.step == 2
    got = b.train_step()
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_export_is_fp16_and_loads(tmp_path):
    t = _trainer(tmp_path)
    path = tmp_path / "w.pt"
    export_weights(t.model, path)
    state = torch.load(path, weights_only=True)
    assert state["arch"] == "filmcolor-lite0"
    assert state["state_dict"]["head.weight"].dtype == torch.float16
    m = create_model("filmcolor-lite0", weights=path)
    torch.testing.assert_close(m.head.weight, t.model.head.weight.half().float())


@pytest.mark.slow
def test_resume_with_ema_gives_identical_average(tmp_path):
    a = _trainer(tmp_path / "a", ema_decay=0.9)
    a.train_step()
    a.train_step()
    a.save()
    a.train_step()
    b = _trainer(tmp_path / "a", ema_decay=0.9)
    assert b.try_resume() and b.step == 2
    b.train_step()
    for k, v in a.ema.items():
        torch.testing.assert_close(v, b.ema[k], msg=k)


@pytest.mark.slow
def test_ema_is_a_running_average_of_the_weights(tmp_path):
    t = _trainer(tmp_path, ema_decay=0.5)
    w0 = t.model.head.weight.detach().clone()
    t.train_step()  # decay at step 1: min(0.5, 2/11) = 2/11
    w1 = t.model.head.weight.detach().clone()
    d = 2 / 11
    torch.testing.assert_close(t.ema["head.weight"], d * w0 + (1 - d) * w1)
    assert not torch.equal(w0, w1)
    # Export ships the average, not the last iterate.
    model = t.export_model()
    torch.testing.assert_close(model.head.weight, d * w0 + (1 - d) * w1)


def test_crop_scale_bounds_the_crop():
    from filmcolor.training.data import sample_batch

    # A 100x100 image with a black/white split at column 50: a crop covering the whole short
    # side always shows both halves; a crop of at most 10 % almost never does.
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 255
    gen = np.random.default_rng(0)
    whole = sample_batch([img], 8, 20, gen, scale=(1.0, 1.0))
    assert all(0.4 < float(x.mean()) < 0.6 for x in whole)
    small = sample_batch([img], 64, 20, np.random.default_rng(1), scale=(0.1, 0.1))
    mixed = sum(1 for x in small if 0.05 < float(x.mean()) < 0.95)
    assert mixed <= 10


def test_clip_share_sets_the_fraction_of_clip_frames_drawn(tmp_path):
    # 2 clip frames among 40 photos: drawn uniformly they would be 5 % of the crops; with
    # clip_share 0.5 they are half. Photos are black, clip frames white, so a crop's mean says
    # which it came from.
    from filmcolor.training.data import clip_draw_weights, sample_batch

    photos = [np.zeros((64, 64, 3), np.uint8) for _ in range(40)]
    frames = [np.full((64, 64, 3), 255, np.uint8) for _ in range(2)]
    data = {"train": photos + frames, "val": [], "val_names": [],
            "train_names": [f"p{i}.jpg" for i in range(40)] + ["a.mp4", "b.mkv"]}
    t = Trainer(TrainConfig(run_dir=str(tmp_path), clip_share=0.5), create_model("filmcolor-lite0", pretrained=False))
    t.load_data(data)
    w = t.draw_weights
    assert w is not None and w.sum() == pytest.approx(1.0)
    assert w[-2:].sum() == pytest.approx(0.5)
    crops = sample_batch(data["train"], 2000, 8, np.random.default_rng(0), weights=w)
    white = float((crops.mean((1, 2, 3)) > 0.5).float().mean())
    assert 0.45 < white < 0.55
    uniform = sample_batch(data["train"], 2000, 8, np.random.default_rng(0))
    assert float((uniform.mean((1, 2, 3)) > 0.5).float().mean()) < 0.1
    # No share, or no clip frames: uniform draws (weights None), as every earlier run drew.
    assert clip_draw_weights(data["train_names"], 0.0) is None
    assert clip_draw_weights(data["train_names"][:40], 0.5) is None
