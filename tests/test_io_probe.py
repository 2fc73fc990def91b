"""Tests for :mod:`filmcolor.io.probe`: what a source reports, and how bad inputs fail."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from filmcolor.errors import SourceOpenError
from filmcolor.io.containers import muxer_for
from filmcolor.io.probe import is_full_range, list_images, probe
from tests.media import Clip, make_audio_only, make_clip, make_image


def test_ntsc_clip(clip_ntsc: Clip) -> None:
    info = probe(clip_ntsc.path)
    assert info.kind == "video"
    assert (info.width, info.height) == (160, 120)
    assert info.time_base == Fraction(1, 24000)
    assert info.frame_rate == Fraction(24000, 1001)
    assert info.frame_count == 48
    assert info.duration == pytest.approx(48 * 1001 / 24000)
    assert info.frame_duration == pytest.approx(1001 / 24000)
    assert info.rotation == 0
    assert info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert info.codec == "h264"
    assert [(s.index, s.codec) for s in info.audio_streams] == [(1, "aac")]
    assert info.subtitle_streams == ()


def test_rotation_from_ffmpeg_display_rotation(clip_rotated: Clip) -> None:
    assert probe(clip_rotated.path).rotation == 90


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_set_by_pyav(tmp_path: Path, degrees: int) -> None:
    # PyAV reports 270 as -90; probe normalises to [0, 360).
    clip = make_clip(tmp_path / "r.mp4", n_frames=2, cuts=(), audio=False, rotation=degrees)
    assert probe(clip.path).rotation == degrees


def test_odd_size_and_aspect(clip_odd: Clip) -> None:
    info = probe(clip_odd.path)
    assert (info.width, info.height) == (322, 179)
    assert info.sample_aspect_ratio == Fraction(4, 3)
    assert info.pix_fmt == "yuv444p"


def test_10bit(clip_10bit: Clip) -> None:
    info = probe(clip_10bit.path)
    assert info.pix_fmt == "yuv420p10le"
    assert info.bit_depth == 10


def test_subtitles_listed(clip_subtitled: Clip) -> None:
    info = probe(clip_subtitled.path)
    assert [s.index for s in info.subtitle_streams] == [2]
    assert info.subtitle_streams[0].codec in ("srt", "subrip")
    assert info.frame_count is None  # Matroska does not store it
    assert info.time_base == Fraction(1, 1000)


def test_color_range_tagged(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "j.mp4", n_frames=2, cuts=(), audio=False, pix_fmt="yuvj420p")
    assert probe(clip.path).color_range == "pc"


def test_image(image_png: Path, image_png16: Path) -> None:
    info = probe(image_png)
    assert info.kind == "image"
    assert (info.width, info.height) == (96, 64)
    assert info.bit_depth == 8 and info.time_base is None and info.rotation == 0
    assert probe(image_png16).bit_depth == 16


@pytest.mark.parametrize(
    ("pix_fmt", "tag", "full"),
    [
        ("yuv420p", 0, False),
        ("yuv420p", 2, True),
        ("yuvj420p", 0, True),
        ("yuv420p10le", "tv", False),
        ("gray", 0, True),
        ("gray", 1, False),
        ("rgb24", "unknown", True),
    ],
)
def test_is_full_range(pix_fmt: str, tag: int | str, full: bool) -> None:
    assert is_full_range(pix_fmt, tag) is full


# -- errors: one actionable line each ------------------------------------------------------------
def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceOpenError) as exc:
        probe(tmp_path / "nope.mp4")
    assert "no such file" in _one_line(exc)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceOpenError) as exc:
        probe(tmp_path)
    assert "is a folder" in _one_line(exc)


def test_not_a_video(tmp_path: Path) -> None:
    txt = tmp_path / "x.txt"
    txt.write_text("hello, not a film\n")
    with pytest.raises(SourceOpenError) as exc:
        probe(txt)
    assert _one_line(exc) == f"cannot open '{txt}': not a video or image FFmpeg can read"


def test_broken_image(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(SourceOpenError) as exc:
        probe(bad)
    assert "not an image" in _one_line(exc)


def test_no_video_stream(tmp_path: Path) -> None:
    wav = make_audio_only(tmp_path / "sound.wav")
    with pytest.raises(SourceOpenError) as exc:
        probe(wav)
    assert "no video stream" in _one_line(exc) and "audio only" in str(exc.value)


def test_list_images(tmp_path: Path) -> None:
    for name in ["b10.png", "b2.jpg", "a.PNG", ".hidden.png"]:
        make_image(tmp_path / name, width=8, height=8)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.PNG", "b2.jpg", "b10.png"]
    with pytest.raises(SourceOpenError):
        list_images(tmp_path / "missing")


@pytest.mark.parametrize(
    ("name", "muxer"),
    [("a.mp4", "mp4"), ("a.MKV", "matroska"), (".a.tmp-12.mp4", "mp4"), ("a.mov.tmp", "mov")],
)
def test_muxer_for(name: str, muxer: str) -> None:
    assert muxer_for(name) == muxer


def test_muxer_for_unknown() -> None:
    with pytest.raises(ValueError, match="unknown video container"):
        muxer_for("film.xyz")


def test_committed_sample() -> None:
    """samples/sample.mp4 is what make_samples.py promises (regenerate it if this fails)."""
    sample = Path(__file__).resolve().parents[1] / "samples" / "sample.mp4"
    if not sample.exists():
        pytest.fail(f"{sample} is missing: run `python samples/make_samples.py`")
    assert sample.stat().st_size < 1_000_000
    info = probe(sample)
    assert (info.width, info.height) == (640, 360)
    assert info.frame_rate == Fraction(24000, 1001) and info.frame_count == 168
    assert [s.codec for s in info.audio_streams] == ["aac"]
