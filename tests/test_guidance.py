"""Guided colour (#12): the guidance head, references and hints through the model stage, the
pipeline and jobs. Parsing and one-line errors: ``tests/test_guidance_spec.py``."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from filmcolor.config import RunConfig
from filmcolor.frames import Frame
from filmcolor.guide.guider import Guide, ResolvedHint, rgb_to_ab
from filmcolor.guide.planes import AB_SCALE, Exemplar, paint_hints, transfer
from filmcolor.guide.spec import GuidanceSpec, HintSpec, load_guidance
from filmcolor.io.decode import decode, decode_image
from filmcolor.jobs import faults, folder
from filmcolor.jobs.manifest import JobManifest
from filmcolor.models import create_model
from filmcolor.pipeline import attach_guide, build_colorizer, video_stages
from tests.media import Clip

SMALL = RunConfig(input="x", render_size=64, batch_size=4)


@pytest.fixture(scope="module")
def lite0():
    """The shipped model (guidance head included), as a fresh instance per module."""
    return create_model("filmcolor-lite0").eval()


def _tinted(luma: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """A colour still (uint8 BGR) with the picture of ``luma`` in the hue of ``rgb``."""
    tint = np.asarray(rgb[::-1], np.float32) / 255.0
    img = luma[..., None] * (0.4 + 1.2 * tint)
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def _frames(clip: Clip) -> list[Frame]:
    return list(decode(clip.path))


def _stage_cbcr(frames: list[Frame], cfg: RunConfig, colorizer, cuts: list[int]) -> dict[int, np.ndarray]:
    copies = (Frame(f.index, f.luma, f.pts, f.time_base) for f in frames)
    return {fr.index: fr.extra["cbcr"].copy() for fr in video_stages(copies, cfg, colorizer, cuts=cuts)}


# -- the model ----------------------------------------------------------------------------------
def test_unguided_forward_is_the_automatic_model(lite0) -> None:
    torch.manual_seed(0)
    lightness = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        plain = lite0(lightness)
        logits, _ = lite0.decode(lite0.encode(lightness))
    assert torch.equal(plain, logits)


def test_untrained_head_passes_the_given_colour_through() -> None:
    # The last layer starts at zero: the head's colour is the given one and its confidence the
    # given one, so a hint already pulls its cell's colour to itself before any training.
    model = create_model("filmcolor-lite0", pretrained=False).eval()
    lightness = torch.full((1, 1, 64, 64), 50.0)
    guide = torch.zeros(1, 3, 16, 16)
    paint_hints(guide[0], [(0.5, 0.5, 60.0, -40.0, 0.0)])
    with torch.no_grad():
        logits, dec = model.decode(model.encode(lightness))
        ab, conf = model.guide_head.guidance(dec, guide)
        guided = model.bins.expected(model.guided_logits(logits, dec, guide))
    assert ab[0, :, 8, 8].tolist() == pytest.approx([60.0, -40.0], abs=1e-3)
    assert float(conf[0, 0, 8, 8]) == pytest.approx(float(torch.sigmoid(torch.tensor(4.0))))
    assert float(conf[0, 0, 0, 0]) < 0.02
    plain = model.bins.expected(logits)
    assert float((guided[0, :, 8, 8] - torch.tensor([60.0, -40.0])).norm()) < 0.5 * float(
        (plain[0, :, 8, 8] - torch.tensor([60.0, -40.0])).norm()
    )


@pytest.mark.slow
def test_weights_without_a_head_load_and_stay_unguided(lite0) -> None:
    state = {k: v for k, v in lite0.state_dict().items() if not k.startswith("guide_head.")}
    model = create_model("filmcolor-lite0", pretrained=False).eval()
    model.load_weights({"state_dict": state})
    assert float(model.guide_head.out.weight.detach().abs().sum()) == 0.0
    lightness = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.equal(model(lightness), lite0(lightness))


def test_shipped_head_is_trained(lite0) -> None:
    assert float(lite0.guide_head.out.weight.detach().abs().sum()) > 0.0


# -- planes -------------------------------------------------------------------------------------
def test_paint_hints_covers_its_disc_and_cell() -> None:
    planes = torch.zeros(3, 16, 32)
    paint_hints(planes, [(0.5, 0.5, 40.0, -20.0, 0.1), (0.02, 0.02, 10.0, 10.0, 0.0)])
    assert planes[2, 8, 16] == 1.0 and planes[0, 8, 16] == pytest.approx(40.0 / AB_SCALE)
    assert planes[1, 8, 16] == pytest.approx(-20.0 / AB_SCALE)
    # Radius 0.1 of the width = 3.2 cells: the cell centred 2.5 cells from x = 0.5 is inside,
    # the one 3.5 cells away is not.
    assert planes[2, 8, 18] == 1.0 and planes[2, 8, 19] == 0.0 and planes[2, 8, 13] == 1.0
    assert planes[2, 0, 0] == 1.0 and planes[0, 0, 0] == pytest.approx(10.0 / AB_SCALE)
    assert int((planes[2] > 0).sum()) < 60


def test_spread_hints_colours_the_region_it_lands_on() -> None:
    from filmcolor.guide.planes import spread_hints

    # Descriptors: the left half is one kind of thing, the right half another.
    desc = torch.zeros(2, 4, 8)
    desc[0, :, :4] = 1.0
    desc[1, :, 4:] = 1.0
    planes = torch.zeros(3, 8, 16)
    planes[:, 0, 15] = torch.tensor([0.0, 0.0, 1.0])  # a sure reference match stays
    spread_hints(planes, desc, [(0.1, 0.5, 50.0, 20.0, 0.0)], spread=0.3)
    conf = planes[2]
    assert float(conf[4, 1]) > 0.9  # the hint's own surroundings
    assert float(conf[1, 6]) > 0.5  # the same kind of thing, further away in its half
    assert float(conf[4, 12]) == 0.0  # the other half: nothing like the marked spot
    assert float(conf[0, 15]) == 1.0 and float(planes[0, 0, 15]) == 0.0
    sure = conf > 0.5
    sure[0, 15] = False  # the reference's cell
    assert torch.allclose(planes[0][sure] / conf[sure] * AB_SCALE, torch.tensor(50.0))


def test_transfer_takes_colour_from_the_matching_cell() -> None:
    keys = torch.nn.functional.normalize(torch.eye(4)[:, :3], dim=0)  # 3 cells, 4-d descriptors
    ex = Exemplar(keys, torch.tensor([[50.0, 0.0], [0.0, 50.0], [-30.0, -30.0]]))
    desc = torch.zeros(1, 4, 1, 2)
    desc[0, 1, 0, 0] = 1.0  # matches cell 1 exactly
    desc[0, 3, 0, 1] = 1.0  # matches nothing (orthogonal to every key)
    ab, conf = transfer(desc, ex)
    assert ab[0, :, 0, 0].tolist() == pytest.approx([0.0, 50.0], abs=1e-3)
    assert float(conf[0, 0, 0, 0]) == 1.0 and float(conf[0, 0, 0, 1]) == 0.0


# -- the model stage ----------------------------------------------------------------------------
@pytest.mark.slow
def test_guide_that_reaches_no_frame_is_bit_identical(clip_ntsc: Clip) -> None:
    frames = _frames(clip_ntsc)[:16]
    plain = build_colorizer(SMALL)
    guided = build_colorizer(SMALL)
    guide = Guide(hints=[ResolvedHint(0.5, 0.5, 60.0, 40.0, 0.05, frame=40)])
    guide.set_cuts([16, 32])
    guided.set_guide(guide)
    a = plain.colorize_batch([Frame(f.index, f.luma) for f in frames[:4]])
    b = guided.colorize_batch([Frame(f.index, f.luma) for f in frames[:4]])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.ab, y.ab)


@pytest.mark.slow
def test_hint_moves_the_colour_at_its_point(image_png: Path) -> None:
    frame = decode_image(image_png)
    target = rgb_to_ab((40, 80, 210))  # a clear blue
    col = build_colorizer(RunConfig(input="x", render_size=128), footage=False)
    plain = col.colorize_batch([Frame(0, frame.luma)])[0].ab
    col.set_guide(Guide(hints=[ResolvedHint(0.5, 0.5, *target, 0.04)]))
    guided = col.colorize_batch([Frame(0, frame.luma)])[0].ab
    h, w = plain.shape[1:]
    at = (slice(h // 2 - 1, h // 2 + 1), slice(w // 2 - 1, w // 2 + 1))

    def dist(ab: np.ndarray) -> float:
        return float(np.hypot(ab[0][at].mean() - target[0], ab[1][at].mean() - target[1]))

    assert dist(guided) < 0.5 * dist(plain)
    assert dist(guided) < 15.0
    # The colour spreads over the hint's surroundings, and fades far from it.
    change = np.hypot(*(guided - plain))
    assert change[h // 2, w // 2] > 2 * np.median(change[:, : w // 6])


@pytest.mark.slow
def test_reference_at_one_frame_guides_exactly_its_shot(clip_ntsc: Clip, tmp_path: Path) -> None:
    frames = _frames(clip_ntsc)
    still = tmp_path / "still.png"
    assert cv2.imwrite(str(still), _tinted(frames[20].luma, (220, 60, 40)))
    cuts = [16, 32]
    cfg = RunConfig(input=str(clip_ntsc.path), render_size=64, batch_size=4)
    plain = _stage_cbcr(frames, cfg, build_colorizer(cfg), cuts)
    colorizer = build_colorizer(cfg)
    attach_guide(colorizer, load_guidance([f"{still}@20f"]), clip_ntsc.path,
                 Fraction(24000, 1001), len(frames), cuts)
    guided = _stage_cbcr(frames, cfg, colorizer, cuts)
    for i in range(len(frames)):
        same = np.array_equal(plain[i], guided[i])
        assert same == (not 16 <= i < 32), f"frame {i}"
    # The reference is red-orange: Cr (red difference) rises in its shot.
    cr = [float(guided[i][1].mean() - plain[i][1].mean()) for i in range(16, 32)]
    assert min(cr) > 0


@pytest.mark.slow
def test_timed_hint_is_carried_through_its_shot_only(clip_ntsc: Clip, tmp_path: Path) -> None:
    frames = _frames(clip_ntsc)
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"hints": [{"frame": 40, "x": 0.5, "y": 0.5, "color": "#2050d0", "radius": 0.05}]}))
    cuts = [16, 32]
    cfg = RunConfig(input=str(clip_ntsc.path), render_size=64, batch_size=4)
    plain = _stage_cbcr(frames, cfg, build_colorizer(cfg), cuts)
    colorizer = build_colorizer(cfg)
    attach_guide(colorizer, load_guidance([], hints), clip_ntsc.path, Fraction(24000, 1001), len(frames), cuts)
    assert colorizer.guide.hints[0].anchor is not None
    guided = _stage_cbcr(frames, cfg, colorizer, cuts)
    for i in range(32):
        assert np.array_equal(plain[i], guided[i]), f"frame {i}"
    # At the hinted frame the blue hint raises Cb (blue difference) where it was put.
    h, w = guided[40].shape[1:]
    assert guided[40][0][h // 2, w // 2] > plain[40][0][h // 2, w // 2] + 0.03  # Cb in [-0.5, 0.5]


def test_model_without_guidance_is_refused() -> None:
    from filmcolor.errors import ConfigError

    col = build_colorizer(RunConfig(input="x", model="tiny"))
    spec = GuidanceSpec(hints=(HintSpec(0.5, 0.5, (255, 0, 0)),))
    with pytest.raises(ConfigError, match="does not take references or hints"):
        attach_guide(col, spec)


# -- jobs ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_job_refuses_changed_guidance_and_resumes_with_the_same(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from filmcolor.__main__ import main

    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"hints": [{"x": 0.3, "y": 0.3, "color": "#c03020"}]}))
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    args = [str(clip_ntsc.path), "-o", str(out), "-q", "--render-size", "64", "--chunk-frames", "12",
            "--hints", str(hints)]

    def stop(name: str, n: int) -> None:
        if f"{name}:{n}" == "done:0":
            raise KeyboardInterrupt

    monkeypatch.setattr(faults, "kill_point", stop)
    assert main(args) == 130
    monkeypatch.undo()
    recorded = JobManifest.load(job).settings["guidance"]
    assert recorded["hints"]["file"] == "h.json" and len(recorded["hints"]["sha256"]) == 64
    capsys.readouterr()

    # The same file name with other hints: refused, naming the guidance.
    hints.write_text(json.dumps({"hints": [{"x": 0.3, "y": 0.3, "color": "#3060c0"}]}))
    assert main(args) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "guidance hints h.json" in err[0] and "--restart" in err[0]
    assert JobManifest.load(job).chunks_done == 1

    hints.write_text(json.dumps({"hints": [{"x": 0.3, "y": 0.3, "color": "#c03020"}]}))
    assert main(["resume", str(job), "-q"]) == 0
    assert out.is_file() and not job.exists()


@pytest.mark.slow
def test_guided_batch_out_of_memory_retries_in_halves(clip_ntsc: Clip, caplog) -> None:
    frames = _frames(clip_ntsc)[:8]
    col = build_colorizer(RunConfig(input="x", render_size=64, batch_size=8))
    col.set_guide(Guide(hints=[ResolvedHint(0.5, 0.5, 60.0, 40.0, 0.05)]))
    reference = {fr.index: fr.ab.copy() for fr in col.colorize_batch([Frame(f.index, f.luma) for f in frames])}
    real = col.model.encode
    seen: list[int] = []

    def limited(x):
        seen.append(x.shape[0])
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    col.model.encode = limited
    out = col.colorize_batch([Frame(f.index, f.luma) for f in frames])
    assert [fr.index for fr in out] == list(range(8))
    for fr in out:
        assert np.allclose(fr.ab, reference[fr.index], atol=1e-3)
    assert seen[:3] == [8, 4, 2] and col.batch_size == 2
    assert "batch size lowered to 2" in caplog.text


# -- previews -----------------------------------------------------------------------------------
def _decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(video=0)]


@pytest.mark.slow
def test_guided_preview_equals_the_full_guided_run(clip_ntsc: Clip, tmp_path: Path) -> None:
    from filmcolor.__main__ import main

    frames = _frames(clip_ntsc)
    still = tmp_path / "still.png"
    assert cv2.imwrite(str(still), _tinted(frames[40].luma, (40, 160, 60)))
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"hints": [{"frame": 38, "x": 0.4, "y": 0.5, "color": "#c02020"}]}))
    guidance = ["--reference", f"{still}@40f", "--hints", str(hints)]
    exact = ["--codec", "ffv1", "--render-size", "64", "-q"]
    full = tmp_path / "full.mkv"
    assert main([str(clip_ntsc.path), "-o", str(full), *exact, *guidance]) == 0
    unguided = tmp_path / "plain.mkv"
    assert main([str(clip_ntsc.path), "-o", str(unguided), *exact]) == 0
    clip = tmp_path / "p.mkv"
    assert main(["preview", str(clip_ntsc.path), "--frames", "28-44", "-o", str(clip), *exact, *guidance]) == 0
    got, whole, plain = _decoded(clip), _decoded(full), _decoded(unguided)
    assert len(got) == 16
    for k, i in enumerate(range(28, 44)):
        assert np.array_equal(got[k], whole[i]), f"frame {i}"
        # Frames 28-31 belong to the shot before the cut at 32: no guidance reaches them.
        assert np.array_equal(whole[i], plain[i]) == (i < 32), f"frame {i}"


@pytest.mark.slow
def test_before_after_sheet_has_an_unguided_row(clip_ntsc: Clip, tmp_path: Path) -> None:
    from filmcolor.__main__ import main

    frames = _frames(clip_ntsc)
    still = tmp_path / "still.png"
    assert cv2.imwrite(str(still), _tinted(frames[4].luma, (220, 60, 40)))
    out = tmp_path / "ba.mp4"
    assert main(["preview", str(clip_ntsc.path), "--frames", "0-8", "-o", str(out), "--render-size", "64",
                 "--reference", str(still), "--before-after", "--sheet", "2", "-q"]) == 0
    assert not out.exists()  # a comparison writes the sheet only
    sheet = cv2.imread(str(out.with_suffix(".png")))
    h, w = clip_ntsc.height, clip_ntsc.width
    assert sheet.shape == (2 * h, 2 * w, 3)
    ycc = cv2.cvtColor(sheet, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    before, after = ycc[:h, :w], ycc[h:, :w]
    # Same picture, redder colour in the guided row (labels aside, the luminance agrees).
    assert np.abs(before[h // 4 :, :, 0] - after[h // 4 :, :, 0]).mean() < 2
    assert after[h // 4 :, :, 1].mean() > before[h // 4 :, :, 1].mean() + 1


def test_one_pass_decoding_equals_the_blend_of_two(lite0) -> None:
    # Where guidance holds, the plain annealed mean; elsewhere the vivid one; in between a blend.
    torch.manual_seed(1)
    logits = torch.randn(2, lite0.bins.num_bins, 6, 7) * 3
    w = torch.rand(2, 1, 6, 7)
    for gain, fade in ((1.5, 0.0), (0.7, 0.0), (1.5, 12.0), (0.7, 8.0)):
        vivid = lite0.bins.decode(logits, chroma_gain=gain, fade=fade)
        plain = lite0.bins.decode(logits, chroma_gain=1.0, fade=0.0)
        got = lite0.bins.decode(logits, chroma_gain=gain, gain_weight=w, fade=fade)
        torch.testing.assert_close(got, plain + (vivid - plain) * w, atol=1e-4, rtol=1e-5)


def test_evidence_is_a_gaussian_around_the_guided_colour(lite0) -> None:
    lightness = torch.full((1, 1, 64, 64), 60.0)
    guide = torch.zeros(1, 3, 16, 16)
    paint_hints(guide[0], [(0.5, 0.5, 30.0, -10.0, 0.1)])
    with torch.no_grad():
        _, dec = lite0.decode(lite0.encode(lightness))
        ab, conf = lite0.guide_head.guidance(dec, guide)
        ev = lite0.guide_head(dec, guide, lite0.bins.centres)
    c = lite0.bins.centres
    d2 = ((c.view(1, -1, 2, 1, 1) - ab[:, None]) ** 2).sum(2)
    expected = -lite0.guide_head.log_strength.exp() * conf * d2 / (2 * lite0.guide_head.SIGMA**2)
    torch.testing.assert_close(ev, expected, atol=1e-3, rtol=1e-4)


# -- training -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_guided_training_moves_only_the_head(tmp_path: Path) -> None:
    from filmcolor.training.guided import GuidedConfig, GuidedTrainer, reference_view

    model = create_model("filmcolor-lite0")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:96]
    imgs = [np.stack([(xx * 2 + 40 * i) % 255, (yy * 3) % 255, np.full_like(xx, 60 * i)], -1).astype(np.uint8)
            for i in range(4)]
    cfg = GuidedConfig(run_dir=str(tmp_path), batch_size=2, crop=64, crop_scale=(0.8, 1.0), ref_size=64,
                       steps=2, warmup=1, rebalance_alpha=0.0, seed=3)
    trainer = GuidedTrainer(cfg, model)
    trainer.load_data({"train": imgs, "val": [], "train_names": [], "val_names": []})
    parts = [trainer.train_step() for _ in range(2)]
    assert all(np.isfinite(p["loss"]) for p in parts)
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.startswith("guide_head.") for k in changed)
    # A reference view is another framing of the same picture, at the asked size.
    view = reference_view(imgs[0][:64, :64], rng, 48)
    assert view.shape == (48, 48, 3) and view.dtype == np.uint8
