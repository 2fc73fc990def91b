"""Model registry, a/b bins, random-init forward passes (timm's recipe) and weights errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from filmcolor.color.space import luma_to_lightness
from filmcolor.errors import ModelNotFoundError, WeightsError
from filmcolor.models import create_model, list_models
from filmcolor.models.abbins import ABBins


@pytest.mark.parametrize("name", [c.name for c in list_models(include_test=True)])
@pytest.mark.slow
def test_random_init_forward(name):
    model = create_model(name, pretrained=False)
    x = torch.rand(2, 1, 64, 96) * 100
    with torch.inference_mode():
        ab = model.predict_ab(x)
    assert ab.shape[:2] == (2, 2)
    assert ab.shape[-1] / ab.shape[-2] == pytest.approx(96 / 64)
    assert not torch.isnan(ab).any()
    assert float(ab.abs().max()) < 128


def test_default_model_is_not_test_only():
    from filmcolor.models.registry import DEFAULT_MODEL, get_model_cfg

    assert not get_model_cfg(DEFAULT_MODEL).test_only
    assert DEFAULT_MODEL in [c.name for c in list_models()]
    assert "tiny" not in [c.name for c in list_models()]


def test_unknown_model():
    with pytest.raises(ModelNotFoundError, match="unknown model 'nope'"):
        create_model("nope")


def test_bins_cover_gamut_only():
    bins = ABBins()
    assert 150 < bins.num_bins < 484  # the 22x22 grid minus out-of-gamut corners
    assert float(bins.centres.abs().max()) <= 105


def test_encode_decode_round_trip():
    bins = ABBins(sigma=5.0)
    ab = torch.tensor([[12.0, -30.0], [-40.0, 55.0], [0.0, 0.0]]).T.reshape(1, 2, 3, 1)
    target = bins.encode(ab)
    torch.testing.assert_close(target.sum(1), torch.ones(1, 3, 1))
    # The mean of the soft label is close to the true colour; logits = log(target) decode to it.
    dec = bins.decode(torch.log(target + 1e-12), temperature=1.0)
    torch.testing.assert_close(dec, ab, atol=2.0, rtol=0)


def test_annealed_mean_is_more_saturated():
    bins = ABBins()
    logits = torch.randn(1, bins.num_bins, 4, 4)
    logits[:, bins.nearest(torch.tensor([60.0, 40.0]).view(1, 2, 1, 1)).item()] += 3
    hot = bins.decode(logits, temperature=0.2).norm(dim=1).mean()
    mean = bins.decode(logits, temperature=1.0).norm(dim=1).mean()
    assert hot > mean


def test_wrong_weights_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        create_model("tiny", weights=bad)
    with pytest.raises(WeightsError, match="not found"):
        create_model("tiny", weights=tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"arch": "tiny", "state_dict": {"x": torch.zeros(1)}}, other)
    with pytest.raises(WeightsError, match="do not fit"):
        create_model("tiny", weights=other)


@pytest.mark.slow
def test_fold_batchnorm_keeps_outputs():
    import copy

    from filmcolor.infer.fuse import fold_batchnorm

    torch.manual_seed(0)
    model = create_model("filmcolor-lite0", pretrained=False).eval()
    for m in model.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(2, 1, 64, 64) * 100
    with torch.inference_mode():
        ref = model(x)
        fused = copy.deepcopy(model)
        assert fold_batchnorm(fused) > 40
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        torch.testing.assert_close(fused(x), ref, atol=1e-3, rtol=1e-3)


def test_vividness_scales_chroma_through_the_colorizer() -> None:
    from filmcolor.infer.colorize import Colorizer

    torch.manual_seed(0)
    lightness = torch.rand(2, 1, 64, 96) * 100
    # filmcolor's own model: the gain follows the hue certainty, so the hue never changes and
    # no pixel's chroma grows by more than the gain.
    torch.manual_seed(1)
    base = Colorizer(create_model("filmcolor-lite0", pretrained=False), "cpu", 2, 64)
    ab1 = base.predict(lightness)
    torch.manual_seed(1)  # the same random weights
    viv = Colorizer(create_model("filmcolor-lite0", pretrained=False), "cpu", 2, 64, vividness=2.0)
    assert viv.vividness == 2.0 and base.vividness == 1.0
    ab2 = viv.predict(lightness)
    r = ab2.norm(dim=1) / ab1.norm(dim=1).clamp(min=1e-6)
    assert float(r.min()) >= 1.0 - 1e-4 and float(r.max()) <= 2.0 + 1e-4
    assert float(r.mean()) > 1.01  # some pixels are boosted
    cos = (ab1 * ab2).sum(1) / (ab1.norm(dim=1) * ab2.norm(dim=1)).clamp(min=1e-6)
    assert float(cos[ab1.norm(dim=1) > 0.5].min()) > 0.9999
    torch.manual_seed(1)
    grey = Colorizer(create_model("filmcolor-lite0", pretrained=False), "cpu", 2, 64, vividness=0.0)
    assert float(grey.predict(lightness).abs().max()) == 0.0  # vividness 0: black and white
    # A model without a colour distribution: a plain chroma scale.
    tiny1 = Colorizer(create_model("tiny"), "cpu", 2, 64).predict(lightness)
    tiny_half = Colorizer(create_model("tiny"), "cpu", 2, 64, vividness=0.5).predict(lightness)
    assert torch.allclose(tiny_half, tiny1 * 0.5)


def test_vividness_out_of_range_is_a_config_error() -> None:
    from filmcolor.config import RunConfig
    from filmcolor.errors import ConfigError

    with pytest.raises(ConfigError, match="--vividness must be in 0..4"):
        RunConfig(input="x.mp4", vividness=5.0)
    assert RunConfig(input="x.mp4", vividness=1.5).pixel_settings()["vividness"] == 1.5


def _frames(n: int, shape=(48, 64)):
    import numpy as np

    from filmcolor.frames import Frame

    rng = np.random.default_rng(0)
    return [Frame(index=i, pts=i, time_base=None, luma=rng.random(shape, dtype=np.float32))
            for i in range(n)]


def test_out_of_memory_halves_the_batch_and_colours_every_frame(caplog) -> None:
    """An out-of-memory error on a batch retries the same frames in halves (never an uncoloured
    frame); later batches use the smaller size; one frame that does not fit is a clear error."""
    import numpy as np

    from filmcolor.infer.colorize import Colorizer, OutOfMemoryError

    col = Colorizer(create_model("tiny"), "cpu", 8, 64)
    reference = {fr.index: fr.ab.copy() for fr in col(iter(_frames(20)))}
    real = col.model.predict_ab
    seen: list[int] = []

    def limited(x, limit=2):
        seen.append(x.shape[0])
        if x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    col.model.predict_ab = limited
    out = list(col(iter(_frames(20))))
    assert [fr.index for fr in out] == list(range(20))
    for fr in out:
        assert fr.ab is not None and np.allclose(fr.ab, reference[fr.index], atol=1e-4)
    assert col.batch_size == 2 and seen[:3] == [8, 4, 2]
    assert "batch size lowered to 2" in caplog.text
    # An allocator that reports it as a RuntimeError (MPS) is handled alike.
    col.model.predict_ab = lambda x: (_ for _ in ()).throw(RuntimeError("MPS backend out of memory"))
    with pytest.raises(OutOfMemoryError, match="even for one frame"):
        col.colorize_batch(_frames(1))
    # Any other error is not mistaken for memory.
    col.model.predict_ab = lambda x: (_ for _ in ()).throw(RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        col.colorize_batch(_frames(2))


@pytest.mark.slow
def test_films_get_the_models_footage_fade() -> None:
    """Films fade the colour the model is unsure of by the model's footage fade unless one is
    asked for (#13); photos do not fade; models without a colour distribution are unaffected;
    films keep the vividness stored with the weights, as photos do."""
    from filmcolor.infer.colorize import Colorizer
    from filmcolor.models.effunet import FOOTAGE_FADE

    def lite0() -> torch.nn.Module:
        return create_model("filmcolor-lite0")  # the shipped weights: a random model is unsure of everything

    photo = Colorizer(lite0(), "cpu", 2, 64)
    film = Colorizer(lite0(), "cpu", 2, 64, footage=True)
    asked = Colorizer(lite0(), "cpu", 2, 64, fade=3.0, footage=True)
    assert FOOTAGE_FADE > 0
    assert film.fade == FOOTAGE_FADE and asked.fade == 3.0 and photo.fade == 0.0
    assert film.vividness == photo.vividness == photo.model_vividness
    # One lookup of the film defaults serves the colorizer and the studies alike.
    assert photo.footage_defaults() == film.footage_defaults() == (photo.model_vividness, FOOTAGE_FADE)
    tiny = Colorizer(create_model("tiny"), "cpu", 2, 64, footage=True)
    assert tiny.fade == 0.0 and tiny.vividness == 1.0
    assert tiny.footage_defaults() == (1.0, 0.0)
    # The same weights as a film: each pixel keeps its hue, paler by a factor in [0, 1] that is
    # not the same everywhere (the certainty varies), and never more colourful than the photo.
    # A real photo (scikit-image's cat): sure of some colours, unsure of others.
    from skimage.data import chelsea

    grey = cv2.cvtColor(chelsea(), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (96, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    lightness = luma_to_lightness(torch.from_numpy(grey)[None, None])
    a, b = photo.predict(lightness), film.predict(lightness)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    ratio = nb / na.clamp(min=1e-6)
    assert float(ratio.max()) <= 1.0 + 1e-4
    assert float(ratio.std()) > 0.01
    assert float(nb.mean()) > 0.2 * float(na.mean())  # sure colour is kept
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)[nb > 0.5]
    assert float(cos.min()) > 0.999
    # Setting the fade back to 0 gives the photo decoding exactly.
    film.set_fade(0.0)
    assert torch.equal(film.predict(lightness), a)
