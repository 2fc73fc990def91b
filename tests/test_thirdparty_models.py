"""Third-party models (#5): DeOldify and Zhang et al. load their released files, as released.

No real weights are needed: each test builds a random-init state dict in the released layout,
saved in the released wrapper, and checks it against ``tests/data/thirdparty_layouts.json`` (every
key and shape of the real files, generated from the shared facts by
``tests/data/make_thirdparty_layouts.py``). The released layout is made the way the originals were:
filmcolor's plain model with PyTorch's own ``spectral_norm`` / ``weight_norm`` applied where the
facts say, so "folded equals un-folded" is checked against PyTorch, not against our own maths.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from filmcolor.errors import WeightsError
from filmcolor.models import create_model, get_model_cfg
from filmcolor.models.deoldify import IMAGENET_MEAN, IMAGENET_STD, deoldify_postprocess
from filmcolor.models.released import (
    fold_normalised_weights,
    fold_spectral_norm,
    fold_weight_norm,
    load_released,
)

DATA = Path(__file__).parent / "data"
LAYOUTS: dict[str, list[tuple[str, list[int]]]] = {
    arch: [(k, s) for k, s in rows]
    for arch, rows in json.loads((DATA / "thirdparty_layouts.json").read_text()).items()
}
ARCH = {
    "deoldify-artistic": "deoldify-deep-resnet34",
    "deoldify-stable": "deoldify-wide-resnet101",
    "deoldify-video": "deoldify-wide-resnet101",
    "zhang-eccv16": "zhang-eccv16",
    "zhang-siggraph17": "zhang-siggraph17",
}
# One model per architecture builds the released file (Stable and Video share the layout).
BUILDER = {
    "deoldify-deep-resnet34": "deoldify-artistic",
    "deoldify-wide-resnet101": "deoldify-video",
    "zhang-eccv16": "zhang-eccv16",
    "zhang-siggraph17": "zhang-siggraph17",
}
SHARED = Path(__file__).resolve().parents[2] / "shared"


# -- building released-layout state dicts -------------------------------------------------------
def _power_iterate(module: nn.Module, steps: int = 4) -> None:
    """Set a spectral-normed module's stored u, v near the top singular vectors (as training does);
    PyTorch's fresh random u, v could give a tiny sigma and blow the activations up."""
    w = module.weight_orig.detach().flatten(1)
    u = torch.nn.functional.normalize(torch.randn(w.shape[0]), dim=0)
    for _ in range(steps):
        v = torch.nn.functional.normalize(w.t() @ u, dim=0)
        u = torch.nn.functional.normalize(w @ v, dim=0)
    module.weight_u.copy_(u)
    module.weight_v.copy_(v)


@torch.no_grad()
def unfolded_reference(name: str, seed: int = 0) -> nn.Module:
    """filmcolor's model with random weights, re-parametrised as the released file was trained:
    ``spectral_norm`` where the facts list ``weight_orig``, ``weight_norm`` where ``weight_g``."""
    torch.manual_seed(seed)
    model = create_model(name, pretrained=False)
    keys = [k for k, _ in LAYOUTS[ARCH[name]]]
    modules = dict(model.named_modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old-style hooks are deprecated
        for key in keys:
            prefix, _, leaf = key.rpartition(".")
            if leaf == "weight_orig":
                torch.nn.utils.spectral_norm(modules[prefix])
                _power_iterate(modules[prefix])
            elif leaf == "weight_g":
                torch.nn.utils.weight_norm(modules[prefix])
    # Non-trivial statistics and attention strength, so a wrong fold or wiring would show.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
        if hasattr(m, "gamma"):
            m.gamma.fill_(0.7)
    return model.eval()


@functools.cache
def released(arch: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(un-folded reference model, its state dict = a random file in the released layout)."""
    ref = unfolded_reference(BUILDER[arch])
    return ref, {k: v.detach().clone() for k, v in ref.state_dict().items()}


def wrap(arch: str, sd: dict) -> dict:
    """The released wrapper: fastai's ``Learner.save`` format for DeOldify (an optimiser state
    holding ``slice`` objects, which is why ``slice`` is allow-listed), bare for Zhang et al."""
    if arch.startswith("deoldify"):
        return {"model": sd, "opt": {"lr": slice(None, 1e-3, None), "wd": 1e-3, "state": {}}}
    return sd


@pytest.fixture(scope="session")
def released_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One released-format file per architecture (DeOldify wrapped, Zhang bare), built lazily."""
    folder = tmp_path_factory.mktemp("released")

    class Files(dict):
        def __missing__(self, arch: str) -> Path:
            path = folder / f"{arch}.pth"
            # DeOldify's files date from PyTorch 1.0/1.1: the pre-1.6 (non-zip) serialisation.
            legacy = arch.startswith("deoldify")
            torch.save(
                wrap(arch, released(arch)[1]), path, _use_new_zipfile_serialization=not legacy
            )
            self[arch] = path
            return path

    return Files()


def fixture_shapes(arch: str) -> list[tuple[str, list[int]]]:
    return [(k, list(s)) for k, s in LAYOUTS[arch]]


# -- the facts fixture ---------------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED / "layouts").is_dir(), reason="shared facts not checked out")
def test_layout_fixture_is_current(tmp_path: Path) -> None:
    """The committed JSON is what the generator makes from the shared tables today."""
    script = DATA / "make_thirdparty_layouts.py"
    gen = tmp_path / "gen.py"
    gen.write_text(
        script.read_text().replace(
            'OUT = Path(__file__).with_name("thirdparty_layouts.json")',
            f"OUT = Path({str(tmp_path / 'out.json')!r})",
        )
    )
    subprocess.run(
        [sys.executable, str(gen), "--shared", str(SHARED)], check=True, capture_output=True
    )
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(
        (DATA / "thirdparty_layouts.json").read_text()
    )


def test_layout_fixture_totals() -> None:
    """Key counts and float32 sizes agree with the published file sizes (REFERENCE.md 4 and 6)."""

    def numel(arch: str) -> int:
        return sum(
            int(np.prod(s)) for k, s in LAYOUTS[arch] if not k.endswith("num_batches_tracked")
        )

    assert len(LAYOUTS["deoldify-wide-resnet101"]) == 754
    assert len(LAYOUTS["deoldify-deep-resnet34"]) == 378
    assert numel("deoldify-wide-resnet101") == 218_479_991  # 873.92 MB: "874 MB"
    assert numel("deoldify-deep-resnet34") == 63_767_523  # 255.07 MB: "255 MB"
    assert numel("zhang-eccv16") * 4 / 1e6 == pytest.approx(129.0, abs=0.1)
    assert numel("zhang-siggraph17") * 4 / 1e6 == pytest.approx(136.8, abs=0.1)


# -- released layout: every key and shape ----------------------------------------------------------
@pytest.mark.parametrize("arch", list(BUILDER))
def test_released_state_matches_facts_exactly(arch: str) -> None:
    """Our model + PyTorch's norm hooks gives exactly the released keys, shapes (and for DeOldify,
    whose tables are in file order, the order)."""
    _, sd = released(arch)
    got = [(k, list(v.shape)) for k, v in sd.items()]
    want = fixture_shapes(arch)
    if arch.startswith("deoldify"):
        assert got == want
    else:  # Zhang's tables give names and shapes, not the file order
        assert dict(got) == dict(want) and len(got) == len(want)
    assert all(v.dtype == torch.int64 for k, v in sd.items() if k.endswith("num_batches_tracked"))
    assert all(v.dtype == torch.float32 for k, v in sd.items() if not k.endswith("tracked"))


# -- loading through filmcolor: folding equals PyTorch's un-folded layers --------------------------
@functools.cache
def loaded(name: str, path: Path) -> nn.Module:
    return create_model(name, weights=path)


@pytest.mark.parametrize(
    "name", ["deoldify-artistic", "deoldify-video", "zhang-eccv16", "zhang-siggraph17"]
)
def test_load_released_file_gives_unfolded_output(name: str, released_files) -> None:
    arch = ARCH[name]
    model = loaded(name, released_files[arch])
    ref, _ = released(arch)
    torch.manual_seed(1)
    lightness = torch.rand(2, 1, 32, 48) * 100
    with torch.inference_mode():
        got, want = model.predict_ab(lightness), ref.predict_ab(lightness)
        if arch.startswith("deoldify"):
            # Also before the sigmoid's squashing and the colour conversion.
            x = torch.randn(1, 3, 32, 32)
            torch.testing.assert_close(model(x), ref(x), atol=2e-4, rtol=1e-4)
    assert got.std() > 0.1  # not a saturated or constant output that would hide a difference
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-4)
    # The loaded model has plain weights only: nothing left of the norm re-parametrisations.
    keys = model.state_dict().keys()
    assert not any(k.endswith(("weight_orig", "weight_u", "weight_g", "weight_v")) for k in keys)


# -- strictness ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", list(BUILDER))
def test_strict_keys(arch: str, released_files) -> None:
    """A missing or extra key, a wrong shape or an incomplete norm group is an error;
    ``num_batches_tracked`` (absent from some old checkpoints) is optional."""
    model = loaded(BUILDER[arch], released_files[arch])
    _, sd = released(arch)
    first_weight = next(k for k in sd if k.endswith(".weight"))

    def fails(state: dict, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            load_released(model, wrap(arch, state))

    fails({k: v for k, v in sd.items() if k != first_weight}, f"missing {first_weight}")
    fails({**sd, "layers.99.weight": torch.zeros(1)}, "unexpected layers.99.weight")
    fails({**sd, first_weight: torch.zeros(3, 3)}, f"shape of {first_weight}")
    if arch.startswith("deoldify"):
        fails(
            {k: v for k, v in sd.items() if k != "layers.3.0.0.weight_u"},
            "incomplete spectral-norm layer layers.3.0.0: no weight_u",
        )
        fails(
            {k: v for k, v in sd.items() if k != "layers.8.conv.0.weight_v"},
            "incomplete weight-norm layer layers.8.conv.0",
        )
    if arch == "deoldify-wide-resnet101":
        return  # the loads below take a while at 218M parameters and test shared code
    # Both wrappers and no num_batches_tracked at all: loads.
    bare = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    load_released(model, bare)
    load_released(model, {"model": bare, "opt": {}})


def test_wrong_file_is_one_clear_line(tmp_path: Path, released_files) -> None:
    """Wrong or corrupt file: one line naming the expected file, its size and sha256."""
    corrupt = tmp_path / "ColorizeArtistic_gen.pth"
    corrupt.write_bytes(b"\x80\x02 truncated download")
    with pytest.raises(WeightsError) as e:
        create_model("zhang-eccv16", weights=corrupt)
    msg = str(e.value)
    assert "\n" not in msg and "not a PyTorch weights file" in msg
    assert "expected colorization_release_v2-9b330a0b.pth (about 129 MB, sha256 9b330a0b...)" in msg
    # A real file of another model: the key mismatch, then what was expected.
    with pytest.raises(WeightsError) as e:
        create_model("zhang-eccv16", weights=released_files["zhang-siggraph17"])
    msg = str(e.value)
    assert "\n" not in msg and "do not fit model 'zhang-eccv16': missing" in msg
    assert msg.endswith("sha256 9b330a0b...)")


def test_missing_default_file_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FILMCOLOR_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="filmcolor weights fetch zhang-siggraph17"):
        create_model("zhang-siggraph17")


# -- folding, layer by layer, against PyTorch's hooks ---------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(6, 5, 3, padding=1),
        lambda: nn.Conv2d(6, 8, 1, bias=False),
        lambda: nn.Conv1d(16, 2, 1, bias=False),
    ],
)
def test_fold_spectral_norm_matches_pytorch(make) -> None:
    torch.manual_seed(0)
    plain = make()
    sn = torch.nn.utils.spectral_norm(copy.deepcopy(plain))
    sn.train()
    x = torch.randn(2, plain.in_channels, *([7, 9] if isinstance(plain, nn.Conv2d) else [11]))
    sn(x)  # a training step: one power iteration updates u, v
    sn.eval()
    sd = sn.state_dict()
    plain.weight.data = fold_spectral_norm(sd["weight_orig"], sd["weight_u"], sd["weight_v"])
    with torch.no_grad():
        torch.testing.assert_close(plain(x), sn(x), atol=1e-6, rtol=1e-5)


def test_fold_weight_norm_matches_pytorch() -> None:
    torch.manual_seed(0)
    plain = nn.Conv2d(6, 12, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        wn = torch.nn.utils.weight_norm(copy.deepcopy(plain))
    with torch.no_grad():
        wn.weight_g.mul_(torch.rand_like(wn.weight_g) + 0.5)  # g no longer equals ||v||
        x = torch.randn(2, 6, 5, 5)
        sd = wn.state_dict()
        plain.weight.data = fold_weight_norm(sd["weight_g"], sd["weight_v"])
        torch.testing.assert_close(plain(x), wn(x), atol=1e-6, rtol=1e-5)


def test_fold_keeps_order_and_legacy_layout() -> None:
    w = torch.randn(4, 3, 1, 1)
    sd = {
        "a.bias": torch.zeros(4),
        "a.weight_orig": w,
        "a.weight_u": torch.ones(4) / 2,
        "a.weight_v": torch.ones(3) / 3**0.5,
        "b.weight": torch.ones(2),
    }
    assert list(fold_normalised_weights(sd)) == ["a.bias", "a.weight", "b.weight"]
    # PyTorch 0.4 saved the computed weight as a buffer and no weight_v: that weight is used.
    legacy = {"a.weight_orig": w, "a.weight": w / 7, "a.weight_u": torch.ones(4)}
    torch.testing.assert_close(fold_normalised_weights(legacy)["a.weight"], w / 7)
    with pytest.raises(ValueError, match="stray a.weight_u"):
        fold_normalised_weights({"a.weight_u": torch.ones(4)})


# -- pre/post-processing parity with the published descriptions ------------------------------------
class _Recorder:
    """Wraps a model's predict_ab to keep what the pipeline fed it."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: torch.Tensor | None = None
        inner = model.predict_ab

        def predict_ab(lightness: torch.Tensor) -> torch.Tensor:
            self.seen = lightness.clone()
            return inner(lightness)

        model.predict_ab = predict_ab


def _ramp_frame(w: int = 64, h: int = 48):
    from filmcolor.frames import Frame

    luma = np.tile(np.linspace(0.1, 0.9, w, dtype=np.float32), (h, 1))
    luma += np.linspace(0.0, 0.05, h, dtype=np.float32)[:, None]
    return Frame(index=0, luma=luma)


def _pil_resize(luma: np.ndarray, size: int, resample: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray((luma * 255.0 + 0.5).astype(np.uint8)).convert("RGB")
    return np.asarray(img.resize((size, size), resample), dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def artistic_colorizer(released_files):
    from filmcolor.infer.colorize import Colorizer

    model = copy.deepcopy(loaded("deoldify-artistic", released_files["deoldify-deep-resnet34"]))
    return Colorizer(model, device="cpu", batch_size=1, render_size=32)


def test_deoldify_preprocessing_parity(artistic_colorizer) -> None:
    """DeOldify: the frame is stretched to a render_factor x 16 square, made grey (PIL luma,
    copied to 3 channels), scaled to [0, 1] and ImageNet-normalised."""
    from filmcolor.models.deoldify import deoldify_preprocess

    model = artistic_colorizer.model
    rec = _Recorder(model)
    frame = _ramp_frame()
    artistic_colorizer.colorize_batch([frame])
    assert tuple(rec.seen.shape) == (1, 1, 32, 32)  # square, whatever the 4:3 frame
    assert tuple(frame.ab.shape) == (2, 32, 32)
    x = deoldify_preprocess(rec.seen)
    # Published: PIL bilinear resize, /255, ImageNet normalisation.
    ref = _pil_resize(frame.luma, 32, resample=2)  # PIL.Image.BILINEAR
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    ref = torch.from_numpy(((ref - mean) / std).transpose(2, 0, 1)[None]).float()
    # Grey in, grey out: the three channels are the same image, before normalisation.
    std_t, mean_t = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_STD, IMAGENET_MEAN))
    grey = x * std_t + mean_t
    torch.testing.assert_close(grey[:, 0], grey[:, 1], atol=2e-5, rtol=0)
    # Only the resampling filter differs (area vs PIL's bilinear) and PIL's uint8 rounding.
    diff = (x - ref).abs() * std_t
    assert float(diff.mean()) < 0.004 and float(diff.max()) < 0.03


def test_deoldify_postprocessing_parity() -> None:
    """Output RGB = denormalised model output; filmcolor takes its Lab a/b (skimage as oracle)."""
    from skimage.color import rgb2lab

    torch.manual_seed(0)
    out = torch.rand(1, 3, 8, 8) * 6 - 3  # the generator's range
    ab = deoldify_postprocess(out)
    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    rgb = np.clip(out[0].numpy() * std + mean, 0, 1)
    rgb8 = np.round(rgb * 255) / 255  # DeOldify's uint8 image
    ref = rgb2lab(rgb8.transpose(1, 2, 0))[..., 1:].transpose(2, 0, 1)
    np.testing.assert_allclose(ab[0].numpy(), ref, atol=1.0)


def test_deoldify_colour_is_the_predicted_colour_on_the_source_luminance(
    artistic_colorizer,
) -> None:
    """End to end with a stub generator that paints one colour: the output takes its chroma and
    keeps the source luminance. DeOldify's own post-process (YUV: source Y + predicted U, V) and
    filmcolor's (Lab: source L + predicted a/b) agree closely on hue and luminance."""
    import cv2

    from filmcolor.infer.merge import merge_rgb

    colour = torch.tensor([0.75, 0.55, 0.40])  # a skin tone
    target = (colour - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    model = artistic_colorizer.model
    original = model.forward
    model.forward = lambda x: target.view(1, 3, 1, 1).expand(x.shape[0], 3, *x.shape[-2:])
    try:
        frame = artistic_colorizer.colorize_batch([_ramp_frame()])[0]
    finally:
        model.forward = original
    rgb = merge_rgb(frame).astype(np.float64)
    # DeOldify's published post-process on the same frame: predicted RGB (uint8), resized to the
    # frame, YUV of both, original Y with predicted U/V, back to RGB.
    h, w = frame.shape
    pred = np.broadcast_to(np.round(colour.numpy() * 255).astype(np.uint8), (h, w, 3))
    orig = np.repeat((frame.luma * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    yuv = cv2.cvtColor(np.ascontiguousarray(pred), cv2.COLOR_RGB2YUV)
    yuv[..., 0] = cv2.cvtColor(orig, cv2.COLOR_RGB2YUV)[..., 0]
    ref = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB).astype(np.float64)
    # Luminance: the source's (BT.601 luma within rounding).
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - frame.luma * 255).mean() < 2.0
    # Hue of the mid-grey area (away from clipping): same as the predicted colour's.
    mid = (frame.luma > 0.35) & (frame.luma < 0.65)

    def hue(img: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8)[None], cv2.COLOR_RGB2HSV)[0, :, 0]

    want_hue = int(hue(np.round(colour.numpy() * 255)[None])[0])
    assert np.abs(hue(rgb[mid]).astype(int) - want_hue).max() <= 2
    assert np.abs(hue(ref[mid]).astype(int) - want_hue).max() <= 2
    # Lab vs YUV merge: same colour to within a few 8-bit levels.
    assert np.abs(rgb[mid] - ref[mid]).mean() < 6.0


def test_zhang_preprocessing_parity(released_files) -> None:
    """Zhang et al.: RGB stretched to 256x256 (PIL bicubic), Lab (skimage), L fed as (L-50)/100;
    SIGGRAPH17 adds two zero a/b hint channels and a zero mask."""
    from skimage.color import rgb2lab

    from filmcolor.infer.colorize import Colorizer

    model = copy.deepcopy(loaded("zhang-siggraph17", released_files["zhang-siggraph17"]))
    seen = {}
    model.model1[0].register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    colorizer = Colorizer(model, device="cpu", batch_size=1)  # default render: 256
    frame = colorizer.colorize_batch([_ramp_frame()])[0]
    x = seen["x"]
    assert tuple(x.shape) == (1, 4, 256, 256) and tuple(frame.ab.shape) == (2, 256, 256)
    assert float(x[:, 1:].abs().max()) == 0.0
    ref_l = rgb2lab(_pil_resize(frame.luma, 256, resample=3))[..., 0]  # PIL.Image.BICUBIC
    diff = (x[0, 0].numpy() * 100 + 50) - ref_l
    assert np.abs(diff).mean() < 0.4 and np.abs(diff).max() < 3.0


def test_eccv16_head_is_the_expectation_over_bins() -> None:
    """ECCV16 as released: softmax over 313 bins, a 1x1 conv holding bin colours / 110, x4
    bilinear upsampling, x110."""
    model = create_model("zhang-eccv16", pretrained=False)
    torch.manual_seed(0)
    centres = torch.randn(313, 2) * 40
    model.model_out.weight.data = (centres / 110).T.reshape(2, 313, 1, 1)
    logits = torch.randn(1, 313, 4, 6) * 3
    model.forward = lambda lightness: logits
    with torch.inference_mode():
        ab = model.predict_ab(torch.zeros(1, 1, 16, 24))
    expected = torch.einsum("nqhw,qc->nchw", logits.softmax(1), centres)
    expected = torch.nn.functional.interpolate(
        expected, scale_factor=4, mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(ab, expected, atol=1e-4, rtol=1e-4)
    # A confident pixel gets its bin's colour.
    one_hot = torch.full((1, 313, 2, 2), -50.0)
    one_hot[:, 17] = 50.0
    model.forward = lambda lightness: one_hot
    with torch.inference_mode():
        ab = model.predict_ab(torch.zeros(1, 1, 8, 8))
    torch.testing.assert_close(ab[0, :, 3, 3], centres[17], atol=1e-3, rtol=0)


def test_siggraph17_output_is_tanh_times_110(released_files) -> None:
    model = loaded("zhang-siggraph17", released_files["zhang-siggraph17"])
    seen = {}
    handle = model.model_out[0].register_forward_hook(lambda m, a, out: seen.update(o=out))
    try:
        with torch.inference_mode():
            ab = model.predict_ab(torch.rand(1, 1, 16, 16) * 100)
    finally:
        handle.remove()
    torch.testing.assert_close(ab, torch.tanh(seen["o"]) * 110)


def test_registry_facts() -> None:
    """Square render geometry at each model's published default size, weights named as released."""
    from filmcolor.models.thirdparty import load_catalog

    catalog = load_catalog()
    for name, rf in [("deoldify-artistic", 35), ("deoldify-stable", 35), ("deoldify-video", 21)]:
        cfg = get_model_cfg(name)
        assert cfg.square and cfg.stride == 16 and cfg.render_size == rf * 16
    for name in ("zhang-eccv16", "zhang-siggraph17"):
        cfg = get_model_cfg(name)
        assert cfg.square and cfg.render_size == 256
    for name in ARCH:
        assert catalog[name].file == get_model_cfg(name).weights


# -- the whole pipeline, each model, on the CPU ----------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory):
    from tests.media import make_clip

    return make_clip(
        tmp_path_factory.mktemp("clip") / "tiny.mp4", width=64, height=48, n_frames=6, cuts=(3,)
    )


@pytest.mark.parametrize("name", list(ARCH))
def test_pipeline_with_each_model(name: str, tiny_clip, released_files, tmp_path: Path) -> None:
    """`filmcolor clip.mp4 --model NAME --weights FILE`: a resumable job with scene cuts,
    smoothing and the audio remux; every frame out, timestamps and luminance kept."""
    import av

    from filmcolor.__main__ import main

    out = tmp_path / "out.mp4"
    rc = main(
        [
            str(tiny_clip.path),
            "-o",
            str(out),
            "--model",
            name,
            "--weights",
            str(released_files[ARCH[name]]),
            "--render-size",
            "32",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "-q",
        ]
    )
    assert rc == 0
    with av.open(str(out)) as c, av.open(str(tiny_clip.path)) as s:
        got = [(f.pts, f.to_ndarray(format="gray")) for f in c.decode(video=0)]
        src = [(f.pts, f.to_ndarray(format="gray")) for f in s.decode(video=0)]
        assert len(c.streams.audio) == 1
    assert [p for p, _ in got] == [p for p, _ in src]
    for (_, y), (_, y0) in zip(got, src, strict=True):
        assert y.shape == (48, 64)
        # The output keeps the decoded luma plane; only the two H.264 encodes differ.
        assert np.abs(y.astype(float) - y0).mean() < 3.0
