"""Tests for :mod:`filmcolor.io.decode` and :mod:`filmcolor.io.encode`: frames, pts, planes."""

from __future__ import annotations

import gc
import logging
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import filmcolor.io.decode as decode_mod
from filmcolor.errors import DecodeError, EncodeError, SourceOpenError
from filmcolor.frames import Frame
from filmcolor.io.decode import THREAD_NAME, decode, decode_image
from filmcolor.io.encode import VideoEncoder, choose_pix_fmt, codec_options, encode
from filmcolor.io.probe import probe
from tests.media import Clip, make_image


def _planes(path: Path) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(pts, Y, U, V)`` per frame, read raw from the planes (independent of filmcolor.io)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            bits = frame.format.components[0].bits
            dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
            planes = []
            for plane in frame.planes[:3]:
                rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
                planes.append(rows[:, : plane.line_size // dtype.itemsize][:, : plane.width].copy())
            out.append((frame.pts, *planes))
    return out


def _with_cbcr(frames: list[Frame], cb: float, cr: float, size: tuple[int, int]) -> list[Frame]:
    for f in frames:
        f.extra["cbcr"] = np.stack([np.full(size, cb, np.float32), np.full(size, cr, np.float32)])
    return frames


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


# -- decode -------------------------------------------------------------------------------------
def test_decode_frames_and_pts(clip_ntsc: Clip) -> None:
    frames = list(decode(clip_ntsc.path))
    assert [f.index for f in frames] == list(range(48))
    assert [f.pts for f in frames] == clip_ntsc.pts
    assert all(f.time_base == Fraction(1, 24000) for f in frames)
    f = frames[5]
    assert f.luma.dtype == np.float32 and f.luma.shape == (120, 160)
    assert 0.0 <= f.luma.min() and f.luma.max() <= 1.0
    # Lossy source (crf 12, with grain): decoded luma stays close to what was written.
    assert _psnr(f.luma, clip_ntsc.luma(5), peak=1.0) > 35


def test_decode_vfr_pts(clip_vfr: Clip) -> None:
    assert [f.pts for f in decode(clip_vfr.path)] == clip_vfr.pts


def test_decode_range(clip_ntsc: Clip) -> None:
    frames = list(decode(clip_ntsc.path, start=10, end=14))
    assert [f.index for f in frames] == [10, 11, 12, 13]
    assert [f.pts for f in frames] == clip_ntsc.pts[10:14]
    assert list(decode(clip_ntsc.path, start=100)) == []


def test_decode_10bit_scale(clip_10bit: Clip) -> None:
    # Lossless 10-bit: luma must be (Y - 64) / 876, exactly what was written.
    for f in decode(clip_10bit.path):
        np.testing.assert_allclose(f.luma, np.clip(clip_10bit.luma(f.index), 0, 1), atol=1e-6)


def test_decode_full_range(tmp_path: Path) -> None:
    from tests.media import make_clip

    clip = make_clip(
        tmp_path / "j.mp4",
        n_frames=3,
        cuts=(),
        audio=False,
        pix_fmt="yuvj420p",
        options={"qp": "0"},
    )
    for f in decode(clip.path):
        np.testing.assert_allclose(f.luma, clip.luma(f.index), atol=1e-6)


def test_decode_rgb_source_is_bt601_luma(tmp_path: Path) -> None:
    path = tmp_path / "rgb.mkv"
    rng = np.random.default_rng(1)
    rgbs = [rng.integers(0, 256, (16, 24, 3), dtype=np.uint8) for _ in range(3)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "bgr0"
        for i, rgb in enumerate(rgbs):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            vf.pts = i
            for p in stream.encode(vf):
                container.mux(p)
        for p in stream.encode():
            container.mux(p)
    for f, rgb in zip(decode(path), rgbs, strict=True):
        want = (rgb @ np.array([0.299, 0.587, 0.114])) / 255.0
        np.testing.assert_allclose(f.luma, want, atol=1e-5)


def test_decode_image(image_png: Path, tmp_path: Path) -> None:
    frames = list(decode(image_png))
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].pts is None
    assert list(decode(image_png, start=1)) == []


def test_decode_image_16bit_exact(tmp_path: Path) -> None:
    arr = make_image(tmp_path / "a.png", bit_depth=16)
    frame = decode_image(tmp_path / "a.png")
    np.testing.assert_allclose(frame.luma, arr / 65535.0, atol=1e-7)
    arr8 = make_image(tmp_path / "b.tif", bit_depth=8)
    np.testing.assert_allclose(decode_image(tmp_path / "b.tif").luma, arr8 / 255.0, atol=1e-7)


def test_decode_image_colour_to_luma(tmp_path: Path) -> None:
    bgr = make_image(tmp_path / "c.png", color=True)
    want = (bgr[..., ::-1] @ np.array([0.299, 0.587, 0.114])) / 255.0
    np.testing.assert_allclose(decode_image(tmp_path / "c.png").luma, want, atol=1e-5)


def test_decode_missing_file_raises_on_first_next(tmp_path: Path) -> None:
    gen = decode(tmp_path / "nope.mp4")
    with pytest.raises(SourceOpenError):
        next(gen)


# -- decode thread -------------------------------------------------------------------------------
def test_abandoned_generator_stops_thread(clip_ntsc: Clip) -> None:
    gen = decode(clip_ntsc.path, prefetch=2)
    first = [next(gen) for _ in range(3)]
    assert [f.index for f in first] == [0, 1, 2]
    assert _decode_threads()  # running ahead, blocked on the full queue
    gen.close()
    assert _decode_threads() == []


def test_break_and_drop_stops_thread(clip_ntsc: Clip) -> None:
    for f in decode(clip_ntsc.path, prefetch=1):
        if f.index == 1:
            break
    gc.collect()  # the for loop's generator is unreachable now; finalisation runs its finally
    assert _decode_threads() == []


def test_worker_exception_becomes_decode_error(
    clip_ntsc: Clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = decode_mod.frame_luma
    calls = {"n": 0}

    def flaky(frame: av.VideoFrame) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 4:
            raise ValueError("corrupt slice")
        return real(frame)

    monkeypatch.setattr(decode_mod, "frame_luma", flaky)
    got = []
    with pytest.raises(DecodeError) as exc:
        for f in decode(clip_ntsc.path, prefetch=2):
            got.append(f.index)
    assert got == [0, 1, 2]
    assert "corrupt slice" in str(exc.value) and "\n" not in str(exc.value)
    assert isinstance(exc.value.__cause__, ValueError)
    assert _decode_threads() == []


def test_filmcolor_errors_pass_through(clip_ntsc: Clip, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(frame: av.VideoFrame) -> np.ndarray:
        raise SourceOpenError("custom")

    monkeypatch.setattr(decode_mod, "frame_luma", broken)
    with pytest.raises(SourceOpenError, match="custom"):
        list(decode(clip_ntsc.path))


# -- encode --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["clip_ntsc", "clip_vfr"])
def test_pts_and_count_round_trip(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    clip: Clip = request.getfixturevalue(fixture)
    info = probe(clip.path)
    frames = _with_cbcr(list(decode(clip.path)), 0.1, -0.1, (60, 80))
    out = tmp_path / "out.mp4"
    stats = encode(frames, out, info)
    assert stats.frames == clip.n_frames
    assert stats.duration == pytest.approx(clip.duration)
    back = _planes(out)
    assert [p for p, *_ in back] == clip.pts  # every timestamp, exactly
    assert probe(out).time_base == info.time_base
    # Luma: libx264 at crf 18 keeps the film's own Y at >= 40 dB over the clip (grainy B-frames
    # dip a little below on their own, hence the per-frame floor).
    src_y = np.stack([np.rint(16 + 219 * f.luma) for f in frames])
    out_y = np.stack([y for _, y, _, _ in back])
    assert _psnr(out_y, src_y) >= 40
    assert min(_psnr(a, b) for a, b in zip(out_y, src_y, strict=True)) >= 37
    # Chroma: 128 + 224 * 0.1 = 150.4 and 128 - 22.4 = 105.6.
    u_mean = np.mean([u.mean() for _, _, u, _ in back])
    v_mean = np.mean([v.mean() for _, _, _, v in back])
    assert u_mean == pytest.approx(150.4, abs=0.7)
    assert v_mean == pytest.approx(105.6, abs=0.7)


def test_lossless_luma_exact_and_grey_chroma(clip_ntsc: Clip, tmp_path: Path) -> None:
    info = probe(clip_ntsc.path)
    frames = list(decode(clip_ntsc.path, end=6))
    out = tmp_path / "ffv1.mp4"
    encode(frames, out, info, codec="ffv1")
    back = list(decode(out))
    for a, b in zip(frames, back, strict=True):
        np.testing.assert_array_equal(a.luma, b.luma)  # Y codes pass through untouched
    for _, _, u, v in _planes(out):
        assert (u == 128).all() and (v == 128).all()  # no cbcr: grey


def test_lossless_chroma_values(clip_ntsc: Clip, tmp_path: Path) -> None:
    info = probe(clip_ntsc.path)
    frames = list(decode(clip_ntsc.path, end=2))
    # Frame 0: chroma at the 4:2:0 plane size, a full-scale ramp -> codes 16..240 exactly.
    ramp = np.linspace(-0.5, 0.5, 80, dtype=np.float32)[None, None, :].repeat(60, 1)
    frames[0].extra["cbcr"] = np.concatenate([ramp, -ramp])
    # Frame 1: full-resolution chroma; the encoder resizes it to the plane (averaging pairs).
    ramp_full = np.linspace(-0.5, 0.5, 160, dtype=np.float32)[None, None, :].repeat(120, 1)
    frames[1].extra["cbcr"] = np.concatenate([ramp_full, -ramp_full])
    out = tmp_path / "ramp.mp4"
    encode(frames, out, info, codec="ffv1")
    (_, _, u0, v0), (_, _, u1, v1) = _planes(out)
    np.testing.assert_array_equal(u0[0], np.rint(128 + 224 * ramp[0, 0]))
    np.testing.assert_array_equal(v0[0], np.rint(128 - 224 * ramp[0, 0]))
    assert (u0[0, 0], u0[0, -1]) == (16, 240)
    assert u1.shape == (60, 80)
    assert np.abs(u1.astype(int) - u0.astype(int)).max() <= 2
    assert (np.diff(u1[0].astype(int)) > 0).all() and (np.diff(v1[0].astype(int)) < 0).all()


def test_stream_tags(clip_ntsc: Clip, tmp_path: Path) -> None:
    info = probe(clip_ntsc.path)
    out = tmp_path / "tags.mp4"
    encode(decode(clip_ntsc.path, end=3), out, info)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert frame.colorspace == 6  # BT.601 (SMPTE 170M)
        assert frame.color_range == 1  # limited
    assert probe(out).color_range == "tv"


def test_odd_size_kept(clip_odd: Clip, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = probe(clip_odd.path)
    out = tmp_path / "odd.mp4"
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        stats = encode(decode(clip_odd.path), out, info)
    assert stats.pix_fmt == "yuv444p"
    assert any("odd" in r.getMessage() for r in caplog.records)
    got = probe(out)
    assert (got.width, got.height) == (322, 179)
    assert got.sample_aspect_ratio == Fraction(4, 3)
    assert [f.luma.shape for f in decode(out)] == [(179, 322)] * clip_odd.n_frames


def test_10bit_source_keeps_10bit(clip_10bit: Clip, tmp_path: Path) -> None:
    info = probe(clip_10bit.path)
    out = tmp_path / "10.mp4"
    stats = encode(decode(clip_10bit.path), out, info, codec="ffv1")
    assert stats.pix_fmt == "yuv420p10le"
    for a, b in zip(decode(clip_10bit.path), decode(out), strict=True):
        np.testing.assert_allclose(a.luma, b.luma, atol=1e-6)


@pytest.mark.parametrize(
    ("codec", "requested", "size", "bits", "want"),
    [
        ("libx264", None, (160, 120), 8, "yuv420p"),
        ("libx264", None, (160, 120), 10, "yuv420p10le"),
        ("libx264", None, (322, 179), 8, "yuv444p"),
        ("libx264", "yuv422p", (321, 180), 8, "yuv444p"),
        ("libx264", "yuv422p", (320, 179), 8, "yuv422p"),
        ("ffv1", None, (64, 48), 12, "yuv420p10le"),
    ],
)
def test_choose_pix_fmt(
    codec: str, requested: str | None, size: tuple[int, int], bits: int, want: str
) -> None:
    assert choose_pix_fmt(codec, requested, *size, source_bits=bits) == want


def test_codec_options_only_where_they_apply() -> None:
    assert codec_options("libx264", 18, "slow") == {"crf": "18", "preset": "slow"}
    assert codec_options("ffv1", 18, "slow") == {}
    assert codec_options("libvpx-vp9", 30, "slow") == {"crf": "30", "b": "0"}
    assert codec_options("ffv1", None, None, {"level": "3"}) == {"level": "3"}


# -- encode errors -------------------------------------------------------------------------------
def test_unknown_codec(clip_ntsc: Clip, tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="unknown encoder 'nope'"):
        encode([], tmp_path / "x.mp4", probe(clip_ntsc.path), codec="nope")
    with pytest.raises(EncodeError, match="not a video encoder"):
        encode([], tmp_path / "x.mp4", probe(clip_ntsc.path), codec="aac")


def test_no_frames(clip_ntsc: Clip, tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="no frames"):
        encode([], tmp_path / "x.mp4", probe(clip_ntsc.path))


def test_bad_frames(clip_ntsc: Clip, tmp_path: Path) -> None:
    info = probe(clip_ntsc.path)
    frames = list(decode(clip_ntsc.path, end=2))
    with pytest.raises(EncodeError, match="timestamps must increase"):
        encode([frames[1], frames[0]], tmp_path / "a.mp4", info)
    small = Frame(index=0, luma=np.zeros((10, 10), np.float32), pts=0)
    with pytest.raises(EncodeError, match="10x10 but the stream is 160x120"):
        encode([small], tmp_path / "b.mp4", info)
    frames[0].extra["cbcr"] = np.zeros((3, 60, 80), np.float32)
    with pytest.raises(EncodeError, match=r"must have shape \(2, h, w\)"):
        encode(frames, tmp_path / "c.mp4", info)


def test_unwritable_path(clip_ntsc: Clip, tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="cannot create"):
        VideoEncoder(tmp_path / "missing" / "x.mp4", probe(clip_ntsc.path)).open()
