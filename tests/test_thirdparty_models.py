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


@pytest.fixture(scope="module", autouse=True)
def filmcolor_home(tmp_path_factory: pytest.TempPathFactory):
    """Loading third-party weights records their sha256 in $FILMCOLOR_HOME's store: keep it out
    of the real home, and shared by the module so each large test file is hashed once."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("filmcolor_home")
        mp.setenv("FILMCOLOR_HOME", str(home))
        yield home


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
    if name == "zhang-eccv16":
        # As released, the head holds bin colours / 110 (up to about 1) and a trained net's bin
        # logits are peaked. At random init they are not (std 0.04: a uniform softmax, i.e. grey
        # everywhere), which would hide a pipeline that loses the colour.
        model.model_out.weight.uniform_(-1.0, 1.0)
        model.model8[6].weight.mul_(500.0)
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
@pytest.mark.slow
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
    "name",
    ["deoldify-artistic", "deoldify-stable", "deoldify-video", "zhang-eccv16", "zhang-siggraph17"],
)
@pytest.mark.slow
def test_load_released_file_gives_unfolded_output(name: str, released_files) -> None:
    arch = ARCH[name]
    # Stable shares Video's layout but is its own registry entry: built here, not kept (874 MB).
    model = (
        create_model(name, weights=released_files[arch])
        if name == "deoldify-stable"
        else loaded(name, released_files[arch])
    )
    assert model.cfg.name == name
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


@pytest.mark.slow
def test_bare_state_dict_file_loads(tmp_path: Path) -> None:
    """fastai's ``Learner.load`` also takes a bare state dict (saved without ``with_opt``): the
    same file without the ``{'model': ..., 'opt': ...}`` wrapper loads through the file path."""
    arch = "deoldify-deep-resnet34"
    ref, sd = released(arch)
    path = tmp_path / "ColorizeArtistic_bare.pth"
    torch.save(sd, path)
    model = create_model("deoldify-artistic", weights=path)
    torch.manual_seed(2)
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), ref(x), atol=2e-4, rtol=1e-4)


# -- strictness ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", list(BUILDER))
@pytest.mark.slow
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


def _detail_frame(w: int = 128, h: int = 96):
    """A full-range ramp under 2-px vertical and 3-px horizontal stripes: fine detail, on which
    the resize filter (area, bilinear, bicubic; antialiased or not) visibly matters."""
    from filmcolor.frames import Frame

    luma = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    luma += (((np.arange(w) // 2) % 2) * 0.3 - 0.15).astype(np.float32)
    luma += (((np.arange(h) // 3) % 2) * 0.2 - 0.1).astype(np.float32)[:, None]
    return Frame(index=0, luma=np.clip(luma, 0.0, 1.0))


def _pillow_resample(img: np.ndarray, size: tuple[int, int], resize_filter: str) -> np.ndarray:
    """``Image.resize`` written from Pillow's documented resampling: separable; output pixel i of
    n_out samples the input at centre ``(i + 0.5) * n_in / n_out``; the kernel (triangle for
    BILINEAR, Keys cubic with a = -0.5 for BICUBIC) is stretched by the scale factor when
    shrinking (anti-aliasing); weights clipped to the image and normalised to sum 1. Clipped to
    [0, 1] as an 8-bit image is."""
    support = 1.0 if resize_filter == "bilinear" else 2.0

    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        if resize_filter == "bilinear":
            return np.clip(1.0 - x, 0.0, None)
        a = -0.5
        near = (a + 2) * x**3 - (a + 3) * x**2 + 1
        far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    def matrix(n_in: int, n_out: int) -> np.ndarray:
        scale = n_in / n_out
        stretch = max(scale, 1.0)
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            centre = (i + 0.5) * scale
            lo = max(0, int(np.floor(centre - support * stretch)))
            hi = min(n_in, int(np.ceil(centre + support * stretch)))
            j = np.arange(lo, hi)
            w = kernel((j + 0.5 - centre) / stretch)
            m[i, lo:hi] = w / w.sum()
        return m

    h, w = size
    out = matrix(img.shape[0], h) @ img.astype(np.float64) @ matrix(img.shape[1], w).T
    return np.clip(out, 0.0, 1.0)


@pytest.fixture(scope="module")
def artistic_colorizer(released_files):
    from filmcolor.infer.colorize import Colorizer

    model = copy.deepcopy(loaded("deoldify-artistic", released_files["deoldify-deep-resnet34"]))
    return Colorizer(model, device="cpu", batch_size=1, render_size=32)


@pytest.mark.parametrize("resize_filter", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(32, 32), (256, 256), (40, 50)])
def test_resize_filter_matches_the_published_filter(resize_filter: str, size) -> None:
    """``resize_luma`` with a model's filter = Pillow's resampling (shrinking and enlarging)."""
    from filmcolor.infer.colorize import resize_luma

    luma = _detail_frame().luma
    got = resize_luma(luma, size, resize_filter)
    assert got.shape == size and got.dtype == np.float32
    np.testing.assert_allclose(got, _pillow_resample(luma, size, resize_filter), atol=2e-6)
    # With teeth: the filter matters on this input (area, or the unantialiased torch filter).
    area = resize_luma(luma, size, "area")
    assert np.abs(area - got).max() > 0.01


@pytest.mark.parametrize("resize_filter", ["bilinear", "bicubic"])
def test_resize_filter_matches_pillow(resize_filter: str) -> None:
    """The same against Pillow itself (float images, so no 8-bit rounding), where installed."""
    pil = pytest.importorskip("PIL.Image")
    from filmcolor.infer.colorize import resize_luma

    luma = _detail_frame().luma
    resample = {"bilinear": pil.BILINEAR, "bicubic": pil.BICUBIC}[resize_filter]
    for size in [(32, 32), (256, 256), (40, 50)]:
        ref = np.asarray(pil.fromarray(luma, mode="F").resize(size[::-1], resample))
        got = resize_luma(luma, size, resize_filter)
        np.testing.assert_allclose(got, np.clip(ref, 0.0, 1.0), atol=2e-6)


def test_own_model_keeps_its_area_resize() -> None:
    """filmcolor-lite0 (golden test, published metrics) keeps OpenCV's area resize, bit for bit."""
    import cv2

    from filmcolor.infer.colorize import resize_luma

    assert "resize_filter" not in get_model_cfg("filmcolor-lite0").extra
    luma = _detail_frame().luma
    want = cv2.resize(luma, (50, 40), interpolation=cv2.INTER_AREA)
    assert np.array_equal(resize_luma(luma, (40, 50)), want)
    with pytest.raises(ValueError, match="unknown resize filter 'lanczos'"):
        resize_luma(luma, (40, 50), "lanczos")


def test_deoldify_preprocessing_parity(artistic_colorizer) -> None:
    """DeOldify: the frame is stretched to a render_factor x 16 square with Pillow's BILINEAR,
    made grey (PIL luma, copied to 3 channels), scaled to [0, 1] and ImageNet-normalised."""
    from filmcolor.models.deoldify import deoldify_preprocess

    assert get_model_cfg("deoldify-artistic").extra["resize_filter"] == "bilinear"
    model = artistic_colorizer.model
    rec = _Recorder(model)
    frame = _detail_frame()
    artistic_colorizer.colorize_batch([frame])
    assert tuple(rec.seen.shape) == (1, 1, 32, 32)  # square, whatever the 4:3 frame
    assert tuple(frame.ab.shape) == (2, 32, 32)
    x = deoldify_preprocess(rec.seen)
    # Published, computed here: bilinear (antialiased) resize, grey x3, ImageNet normalisation.
    grey = _pillow_resample(frame.luma, (32, 32), "bilinear")
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    ref = (grey[None] - mean[:, None, None]) / std[:, None, None]
    # Only float rounding through Lab lightness differs (DeOldify also rounds to 8 bits).
    np.testing.assert_allclose(x[0].numpy(), ref, atol=1e-4 / 0.224)
    # The earlier area resize was off by this much on the same input.
    import cv2

    area = cv2.resize(frame.luma, (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(area - grey).max() > 0.02


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


@pytest.mark.slow
def test_zhang_preprocessing_parity(released_files) -> None:
    """Zhang et al.: RGB stretched to 256x256 with Pillow's BICUBIC, Lab (skimage), L fed as
    (L-50)/100; SIGGRAPH17 adds two zero a/b hint channels and a zero mask. Enlarging (a small
    frame) and shrinking (a large one, where anti-aliasing matters)."""
    from skimage.color import gray2rgb, rgb2lab

    from filmcolor.infer.colorize import Colorizer

    assert get_model_cfg("zhang-siggraph17").extra["resize_filter"] == "bicubic"
    assert get_model_cfg("zhang-eccv16").extra["resize_filter"] == "bicubic"
    model = copy.deepcopy(loaded("zhang-siggraph17", released_files["zhang-siggraph17"]))
    seen = {}
    model.model1[0].register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    colorizer = Colorizer(model, device="cpu", batch_size=1)  # default render: 256
    for w, h in [(128, 96), (400, 300)]:
        frame = colorizer.colorize_batch([_detail_frame(w, h)])[0]
        x = seen["x"]
        assert tuple(x.shape) == (1, 4, 256, 256) and tuple(frame.ab.shape) == (2, 256, 256)
        assert float(x[:, 1:].abs().max()) == 0.0
        grey = _pillow_resample(frame.luma, (256, 256), "bicubic")
        ref_l = rgb2lab(gray2rgb(grey))[..., 0]
        np.testing.assert_allclose(x[0, 0].numpy() * 100 + 50, ref_l, atol=2e-3)


def test_deoldify_yuv_merge_is_opencv_yuv_swap() -> None:
    """``deoldify_yuv_merge``: Y of the source, U/V of the prediction (OpenCV's BT.601 YUV:
    Y = .299R + .587G + .114B, U = .492(B - Y), V = .877(R - Y), offset 128)."""
    from filmcolor.models.deoldify import deoldify_yuv_merge

    rng = np.random.default_rng(0)
    # Moderate colours on mid greys, so no channel clips (that would move Y, as it does there).
    src = np.repeat(rng.integers(70, 190, (6, 8, 1), dtype=np.uint8), 3, axis=2)
    pred = rng.integers(100, 160, (3, 4, 3), dtype=np.uint8)
    out = deoldify_yuv_merge(src, pred).astype(float)
    assert out.shape == (6, 8, 3)

    def yuv(img: np.ndarray) -> np.ndarray:
        r, g, b = np.moveaxis(img.astype(float), -1, 0)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return np.stack([y, 0.492 * (b - y), 0.877 * (r - y)], axis=-1)

    import cv2

    up = cv2.resize(pred, (8, 6), interpolation=cv2.INTER_LINEAR)  # published: bilinear to W x H
    np.testing.assert_allclose(yuv(out)[..., 0], src[..., 0], atol=1.5)
    np.testing.assert_allclose(yuv(out)[..., 1:], yuv(up)[..., 1:], atol=2.5)
    with pytest.raises(ValueError, match="source_rgb must be a uint8 array"):
        deoldify_yuv_merge(src.astype(np.float32), pred)


MERGE_COLOURS = {"skin": (0.75, 0.55, 0.40), "sky": (0.45, 0.60, 0.85), "grass": (0.35, 0.60, 0.30)}


def test_lab_and_yuv_merge_over_the_full_luminance_range(artistic_colorizer) -> None:
    """End to end with a stub generator that paints one colour on a 0..1 luminance ramp: the
    output takes its hue and keeps the source luminance. filmcolor joins chroma in Lab (stills:
    source L + predicted a/b; video: the source's own Y plane + the Cb/Cr of that Lab colour),
    DeOldify swaps U/V in YUV (:func:`deoldify_yuv_merge`). Their difference is quantified here
    in 8-bit RGB levels, per tenth of the luminance range; it is largest in the shadows, where
    a fixed a/b is a strong colour, and at the bright end, where both clip."""
    import cv2

    from filmcolor.color.space import ycbcr_to_rgb
    from filmcolor.frames import Frame
    from filmcolor.infer.merge import chroma_planes, merge_rgb
    from filmcolor.models.deoldify import deoldify_yuv_merge

    w, h = 250, 10
    luma = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    src8 = np.repeat((luma * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    mid = (luma[0] > 0.2) & (luma[0] < 0.8)
    model = artistic_colorizer.model
    original = model.forward

    def hue(img: np.ndarray) -> np.ndarray:
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)[None]
        return cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[0, :, 0].astype(int)

    table = {}
    for name, colour in MERGE_COLOURS.items():
        target = (torch.tensor(colour) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
        model.forward = lambda x, t=target: t.view(1, 3, 1, 1).expand(x.shape[0], 3, *x.shape[-2:])
        try:
            frame = artistic_colorizer.colorize_batch([Frame(index=0, luma=luma.copy())])[0]
        finally:
            model.forward = original
        still = merge_rgb(frame).astype(np.float64)
        cbcr = torch.from_numpy(chroma_planes(frame, (h, w)))
        video = ycbcr_to_rgb(torch.from_numpy(luma)[None], cbcr).permute(1, 2, 0).numpy() * 255
        pred8 = np.round(np.array(colour) * 255).astype(np.uint8)
        ref = deoldify_yuv_merge(src8, np.broadcast_to(pred8, (4, 4, 3)).copy()).astype(np.float64)
        want_hue = int(hue(pred8[None].astype(float))[0])
        for path, rgb in (("still", still), ("video", video)):
            diff = np.abs(rgb - ref).mean(axis=-1)[0]  # per column = per luminance level
            bands = [float(diff[i * w // 10 : (i + 1) * w // 10].mean()) for i in range(10)]
            table[name, path] = (float(diff.mean()), float(np.abs(rgb - ref).max()), bands)
            # Same hue as predicted away from the clipped ends (OpenCV hue unit: 2 degrees).
            assert np.abs(hue(rgb[0][mid]) - want_hue).max() <= 7, (name, path)
        assert np.abs(hue(ref[0][mid]) - want_hue).max() <= 7
        # Luminance: the video path keeps the source Y plane (exact but for RGB clipping).
        y = video @ np.array([0.299, 0.587, 0.114])
        assert np.abs(y - luma * 255)[:, mid].max() < 1.0
    for (name, path), (mean, peak, bands) in table.items():
        print(f"{name:6} {path:6} mean {mean:5.2f} max {peak:5.1f} by tenth: "
              + " ".join(f"{b:4.1f}" for b in bands))
    # Measured (8-bit levels, mean over the full range): video 2.8-3.5; still 2.5 (skin) to
    # 12 (grass: CIE L and BT.601 luma part ways for saturated greens).
    for name in MERGE_COLOURS:
        mean, peak, bands = table[name, "video"]
        assert mean < 4.5 and peak < 25
        assert max(bands[4:8]) < 3.0  # mid-tones: within a few levels
    assert table["skin", "still"][0] < 3.5
    assert max(table[name, "still"][0] for name in MERGE_COLOURS) < 15


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
    from filmcolor.models.catalog import load_catalog

    catalog = load_catalog()
    for name, rf in [("deoldify-artistic", 35), ("deoldify-stable", 35), ("deoldify-video", 21)]:
        cfg = get_model_cfg(name)
        assert cfg.square and cfg.stride == 16 and cfg.render_size == rf * 16
        assert cfg.extra["resize_filter"] == "bilinear"  # PIL BILINEAR (REFERENCE 4.3)
    for name in ("zhang-eccv16", "zhang-siggraph17"):
        cfg = get_model_cfg(name)
        assert cfg.square and cfg.render_size == 256
        assert cfg.extra["resize_filter"] == "bicubic"  # PIL BICUBIC (REFERENCE 5)
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
@pytest.mark.slow
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
        # yuv420p as an array: the Y rows, then U and V (a quarter of the Y area each).
        got = [(f.pts, f.to_ndarray(format="yuv420p")) for f in c.decode(video=0)]
        src = [(f.pts, f.to_ndarray(format="yuv420p")) for f in s.decode(video=0)]
        assert len(c.streams.audio) == 1
    assert [p for p, _ in got] == [p for p, _ in src]
    for (_, yuv), (_, yuv0) in zip(got, src, strict=True):
        y, y0 = yuv[:48].astype(float), yuv0[:48].astype(float)
        assert y.shape == (48, 64)
        # The output keeps the decoded luma plane; only the two H.264 encodes differ.
        assert np.abs(y - y0).mean() < 3.0
        # And it has colour: the source's chroma is neutral, the output's is not.
        uv, uv0 = yuv[48:].astype(float) - 128, yuv0[48:].astype(float) - 128
        assert np.abs(uv0).max() <= 1
        assert np.abs(uv).mean() > 1.0 and np.abs(uv).max() > 4
