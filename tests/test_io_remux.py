"""Tests for :mod:`filmcolor.io.remux`: the command as data, then real FFmpeg runs on tiny clips."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import pytest

from filmcolor.errors import RemuxError
from filmcolor.io import ffmpeg_exe as ffmpeg_exe_mod
from filmcolor.io.decode import decode
from filmcolor.io.encode import EncodeStats, encode
from filmcolor.io.probe import SourceInfo, StreamInfo, probe
from filmcolor.io.remux import build_remux_args, ffmpeg_exe, run_remux, unfit_streams, verify_output
from tests.media import Clip, make_clip


def _info(**kw: object) -> SourceInfo:
    base: dict[str, object] = {
        "path": Path("src.mkv"),
        "kind": "video",
        "width": 64,
        "height": 48,
        "time_base": Fraction(1, 1000),
        "frame_rate": Fraction(24),
        "audio_streams": (StreamInfo(1, "aac"),),
    }
    base.update(kw)
    return SourceInfo(**base)  # type: ignore[arg-type]


def _after(args: list[str], flag: str) -> list[str]:
    """Every value that follows ``flag`` in ``args``."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


# -- build_remux_args: pure, no FFmpeg -----------------------------------------------------------
def test_args_mp4_basic() -> None:
    args = build_remux_args("v.mp4", "src.mkv", "out.mp4", _info(), ffmpeg="/opt/ffmpeg")
    assert all(isinstance(a, str) for a in args)
    assert args[0] == "/opt/ffmpeg"
    assert args[-1] == "out.mp4"
    assert _after(args, "-i") == ["v.mp4", "src.mkv"]
    assert _after(args, "-map") == ["0:v:0", "1:a?"]
    assert _after(args, "-c:v") == ["copy"] and _after(args, "-c:a") == ["copy"]
    assert _after(args, "-f") == ["mp4"]
    assert _after(args, "-movflags") == ["+faststart"]
    assert _after(args, "-map_metadata") == ["1"] and _after(args, "-map_chapters") == ["1"]
    assert "-display_rotation" not in args
    # Global options come before the first input, not after the output.
    assert args.index("-y") < args.index("-i") and "-nostdin" in args


def test_args_rotation_on_video_input() -> None:
    args = build_remux_args("v.mp4", "src.mp4", "out.mkv", _info(rotation=270))
    i = args.index("-display_rotation")
    assert args[i + 1] == "270" and args[i + 2 : i + 4] == ["-i", "v.mp4"]


def test_args_mkv_copies_everything() -> None:
    info = _info(subtitle_streams=(StreamInfo(2, "ass"), StreamInfo(3, "hdmv_pgs_subtitle")))
    args = build_remux_args("v.mp4", "src.mkv", "out.mkv", info)
    assert _after(args, "-map") == ["0:v:0", "1:a?", "1:s?", "1:t?"]
    assert _after(args, "-c") == ["copy"]
    assert _after(args, "-f") == ["matroska"]
    assert "-movflags" not in args


def test_args_mp4_subtitle_policy(caplog: pytest.LogCaptureFixture) -> None:
    info = _info(
        subtitle_streams=(
            StreamInfo(2, "subrip"),
            StreamInfo(3, "hdmv_pgs_subtitle"),
            StreamInfo(4, "mov_text"),
        )
    )
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        args = build_remux_args("v.mp4", "src.mkv", "out.mp4", info)
    assert _after(args, "-map") == ["0:v:0", "1:a?", "1:2", "1:4"]
    assert _after(args, "-c:s:0") == ["mov_text"] and _after(args, "-c:s:1") == ["copy"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "converted to mov_text" in messages and "bitmap subtitle stream 3" in messages


def test_unfit_streams_for_mp4_and_mkv() -> None:
    """Bitmap subtitles never fit MP4, text ones need conversion; AAC is known to fit (FFmpeg is
    not asked: the executable given does not exist); Matroska takes everything."""
    info = _info(
        subtitle_streams=(StreamInfo(2, "subrip"), StreamInfo(3, "hdmv_pgs_subtitle"),
                          StreamInfo(4, "mov_text"))
    )
    unfit = unfit_streams(info, "out.mp4", ffmpeg="/nonexistent/ffmpeg")
    assert unfit.refused == ("subtitle stream 3 (hdmv_pgs_subtitle)",)
    assert unfit.converted == ("subtitle stream 2 (subrip)",)
    assert not unfit_streams(info, "out.mkv", ffmpeg="/nonexistent/ffmpeg")
    assert not unfit_streams(_info(), "out.mov", ffmpeg="/nonexistent/ffmpeg")
    with pytest.raises(RemuxError, match="unknown video container"):
        unfit_streams(info, "out.xyz", ffmpeg="/nonexistent/ffmpeg")


def test_args_temp_names_keep_the_container() -> None:
    args = build_remux_args("v.mp4", "src.mp4", "/x/.film.tmp-7.mp4", _info())
    assert _after(args, "-f") == ["mp4"]
    args = build_remux_args("v.mp4", "src.mp4", "film.mkv.tmp", _info())
    assert _after(args, "-f") == ["matroska"]


def test_args_unknown_container() -> None:
    with pytest.raises(RemuxError, match="unknown video container"):
        build_remux_args("v.mp4", "src.mp4", "film.xyz", _info())


def test_paths_with_spaces_and_quotes_are_single_args() -> None:
    src = 'my film\'s "final" cut.mkv'
    args = build_remux_args("v.mp4", src, "out put.mkv", _info())
    assert src in args and "out put.mkv" in args


def test_ffmpeg_exe_prefers_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffmpeg_exe_mod.shutil, "which", lambda name: "/usr/local/bin/ffmpeg")
    assert ffmpeg_exe() == "/usr/local/bin/ffmpeg"
    monkeypatch.setattr(ffmpeg_exe_mod.shutil, "which", lambda name: None)
    import imageio_ffmpeg

    assert ffmpeg_exe() == imageio_ffmpeg.get_ffmpeg_exe()


# -- real runs ---------------------------------------------------------------------------------
def _audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def _video_pts(path: Path) -> tuple[Fraction, list[int]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return Fraction(s.time_base), sorted(p.pts for p in c.demux(s) if p.size)


def _colour(clip: Clip, dst: Path, codec: str = "libx264") -> EncodeStats:
    """Stand-in for the pipeline: encode the decoded frames with constant chroma."""
    return encode(decode(clip.path), dst, probe(clip.path), codec=codec, preset="ultrafast")


@pytest.fixture(scope="module")
def coloured_ntsc(
    clip_ntsc: Clip, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, EncodeStats]:
    dst = tmp_path_factory.mktemp("remux") / "video.mp4"
    return dst, _colour(clip_ntsc, dst)


def test_remux_mp4_audio_bit_exact(
    clip_ntsc: Clip, coloured_ntsc: tuple[Path, EncodeStats], tmp_path: Path
) -> None:
    video, stats = coloured_ntsc
    info = probe(clip_ntsc.path)
    out = tmp_path / "out.mp4"
    run_remux(build_remux_args(video, clip_ntsc.path, out, info, ffmpeg=ffmpeg_exe()))
    assert _audio_packets(out) == _audio_packets(clip_ntsc.path)  # copied, not re-encoded
    tb, pts = _video_pts(out)
    assert [Fraction(p) * tb for p in pts] == [
        Fraction(p) * clip_ntsc.time_base for p in clip_ntsc.pts
    ]
    verify_output(out, stats.frames, stats.duration)
    verify_output(out, clip_ntsc.n_frames, info.duration)
    got = probe(out)
    assert got.duration == pytest.approx(info.duration, abs=1001 / 24000)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_remux_vfr(clip_vfr: Clip, tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    stats = _colour(clip_vfr, video)
    info = probe(clip_vfr.path)
    source_times = [Fraction(p) * clip_vfr.time_base for p in clip_vfr.pts]
    mp4 = tmp_path / "out.mp4"
    run_remux(build_remux_args(video, clip_vfr.path, mp4, info, ffmpeg=ffmpeg_exe()))
    verify_output(mp4, stats.frames, stats.duration)
    tb, pts = _video_pts(mp4)
    assert [p * tb for p in pts] == source_times  # MP4 keeps the 1/24000 clock: exact
    mkv = tmp_path / "out.mkv"
    run_remux(build_remux_args(video, clip_vfr.path, mkv, info, ffmpeg=ffmpeg_exe()))
    verify_output(mkv, stats.frames, stats.duration)
    tb, pts = _video_pts(mkv)
    # Matroska stores milliseconds: each frame within half a millisecond of its source time.
    for p, t in zip(pts, source_times, strict=True):
        assert abs(p * tb - t) <= Fraction(1, 2000)


def test_remux_subtitles_mkv_and_mp4(
    clip_subtitled: Clip,
    coloured_ntsc: tuple[Path, EncodeStats],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    video, stats = coloured_ntsc
    info = probe(clip_subtitled.path)
    mkv = tmp_path / "out.mkv"
    run_remux(build_remux_args(video, clip_subtitled.path, mkv, info, ffmpeg=ffmpeg_exe()))
    got = probe(mkv)
    assert [s.codec for s in got.subtitle_streams] == [info.subtitle_streams[0].codec]
    assert _audio_packets(mkv) == _audio_packets(clip_subtitled.path)
    verify_output(mkv, stats.frames, stats.duration)

    mp4 = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="filmcolor"):
        run_remux(build_remux_args(video, clip_subtitled.path, mp4, info, ffmpeg=ffmpeg_exe()))
    assert [s.codec for s in probe(mp4).subtitle_streams] == ["mov_text"]
    assert any("mov_text" in r.getMessage() for r in caplog.records)
    with av.open(str(mp4)) as c:
        texts = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert any(b"Hello" in t for t in texts) and any(b"Film" in t for t in texts)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_remux_carries_rotation(
    clip_rotated: Clip, coloured_ntsc: tuple[Path, EncodeStats], tmp_path: Path, suffix: str
) -> None:
    video, _ = coloured_ntsc  # encoded in coded orientation, like the pipeline does
    info = probe(clip_rotated.path)
    assert probe(video).rotation == 0
    out = tmp_path / f"out{suffix}"
    run_remux(build_remux_args(video, clip_rotated.path, out, info, ffmpeg=ffmpeg_exe()))
    got = probe(out)
    assert got.rotation == 90
    assert (got.width, got.height) == (160, 120)  # pixels untouched; players rotate


def test_remux_error_unsupported_audio(tmp_path: Path) -> None:
    # WavPack lives in Matroska rips; MP4 has no tag for it (FFmpeg 9 does take PCM in MP4).
    clip = make_clip(tmp_path / "wv.mkv", n_frames=4, cuts=(), audio_codec="wavpack")
    video = tmp_path / "video.mp4"
    _colour(clip, video)
    args = build_remux_args(
        video, clip.path, tmp_path / "out.mp4", probe(clip.path), ffmpeg=ffmpeg_exe()
    )
    with pytest.raises(RemuxError) as exc:
        run_remux(args)
    msg = str(exc.value)
    assert "\n" not in msg and ".mkv" in msg and "wavpack" in msg
    assert exc.value.stderr  # FFmpeg's own words are kept for --debug
    # The advice works.
    run_remux(
        build_remux_args(
            video, clip.path, tmp_path / "out.mkv", probe(clip.path), ffmpeg=ffmpeg_exe()
        )
    )


def test_remux_error_missing_ffmpeg(clip_ntsc: Clip, tmp_path: Path) -> None:
    args = build_remux_args(
        "v.mp4",
        clip_ntsc.path,
        tmp_path / "o.mkv",
        probe(clip_ntsc.path),
        ffmpeg=str(tmp_path / "no-ffmpeg"),
    )
    with pytest.raises(RemuxError, match="FFmpeg not found"):
        run_remux(args)


def test_remux_error_missing_input(clip_ntsc: Clip, tmp_path: Path) -> None:
    args = build_remux_args(
        tmp_path / "gone.mp4",
        clip_ntsc.path,
        tmp_path / "o.mkv",
        probe(clip_ntsc.path),
        ffmpeg=ffmpeg_exe(),
    )
    with pytest.raises(RemuxError) as exc:
        run_remux(args)
    assert "\n" not in str(exc.value) and "gone.mp4" in str(exc.value)


def test_verify_output_catches_lost_frames(coloured_ntsc: tuple[Path, EncodeStats]) -> None:
    video, stats = coloured_ntsc
    verify_output(video, stats.frames, stats.duration)
    with pytest.raises(RemuxError, match=f"has {stats.frames} video frames, expected"):
        verify_output(video, stats.frames + 1, stats.duration)
    with pytest.raises(RemuxError, match="lasts"):
        verify_output(video, stats.frames, stats.duration + 0.1)
    verify_output(video, stats.frames, stats.duration + 0.02)  # within one frame (41.7 ms)
