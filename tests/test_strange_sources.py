"""Strange but valid sources, and every output container: each works, or is refused with one line.

One table (:data:`ROWS`): a source built here with :mod:`tests.media` (PyAV) or the bundled
FFmpeg, and what its output must keep. A working row must exit 0 and give an output with the
source's frame count and frame times (so its duration), its size, pixel aspect and rotation,
every audio stream with all its packets, and its subtitles (README, "Usage": "the output has
exactly the input's frame count", "with the source's timestamps, sample aspect ratio and
rotation", audio and subtitles copied; 10-bit gives 10-bit, odd sizes yuv444p). Nothing else
may be left beside the output.

Then the containers: each accepted output suffix from one clip with sound; ``.avi`` and ``.webm``
refused before any work (exit 5, one line); stills over 400 Mpx refused (exit 2, one line), and a
108 Mpx still coloured (slow). The tiny random model everywhere.

The table in ``docs/sources_table.md`` lists these cases; keep the two in step.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from filmcolor.__main__ import main
from tests.media import add_subtitles, make_clip, rotate_with_ffmpeg, run_ffmpeg

TINY = ("--model", "tiny", "-q")
ACCEPTED = (".mp4", ".m4v", ".mov", ".mkv", ".nut", ".ts", ".m2ts")


# -- helpers ---------------------------------------------------------------------------------------
def cli(*args: object) -> subprocess.CompletedProcess:
    """``python -m filmcolor ARGS`` as a user runs it: one-line errors, no debug traceback."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["FILMCOLOR_DEBUG"] = "0"
    return subprocess.run([sys.executable, "-m", "filmcolor", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def one_error_line(r: subprocess.CompletedProcess, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("filmcolor: error: "), lines
    return lines[0]


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - any failure means: not in this PyAV build
        return False
    return True


def has_decoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "r")
    except Exception:  # noqa: BLE001
        return False
    return True


def _family(codec: str) -> str:
    """MPEG-1 Layer II copied into MP4 reads back as "mp3" (MP4 has one object type for MPEG-1
    audio; the decoder takes every layer): the same stream."""
    return "mpeg-audio" if codec in ("mp2", "mp2float", "mp3", "mp3float") else codec


@dataclass
class Facts:
    """What a film file holds, by demuxing every packet (and decoding the first frame)."""

    frames: int
    times: list[float]  # video packet times, sorted, relative to the first
    duration: float  # first frame's start to last frame's end
    width: int
    height: int
    pix_fmt: str
    sar: Fraction
    rotation: int
    audio: list[tuple[str, int]]  # (codec, packets) per audio stream
    subtitles: list[str]  # codec per subtitle stream
    period: float  # one frame at the nominal rate


def facts(path: Path) -> Facts:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        tb = v.time_base
        counts = {s.index: 0 for s in c.streams}
        pts: list[int] = []
        end = None
        for p in c.demux():
            if not p.size:
                continue
            counts[p.stream.index] += 1
            if p.stream.index == v.index and p.pts is not None:
                pts.append(p.pts)
                stop = p.pts + (p.duration or 0)
                end = stop if end is None else max(end, stop)
        pts.sort()
        rate = v.average_rate or v.guessed_rate or Fraction(24)
        cc = v.codec_context
        f = Facts(
            frames=counts[v.index],
            times=[float((p - pts[0]) * tb) for p in pts],
            duration=float((end - pts[0]) * tb),
            width=cc.width,
            height=cc.height,
            pix_fmt=cc.pix_fmt,
            sar=v.sample_aspect_ratio or Fraction(1),
            rotation=0,
            audio=[(_family(s.codec_context.name), counts[s.index]) for s in c.streams.audio],
            subtitles=[s.codec_context.name for s in c.streams.subtitles],
            period=float(1 / rate),
        )
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        f.rotation = int(getattr(first, "rotation", 0) or 0) % 360
    return f


def damage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "damaged" in r.getMessage()]


# -- sources ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames of 160x120 at 24000/1001 with a cut at 12 and an AAC tone: the clip other rows
    are transcoded or remuxed from."""
    return make_clip(tmp_path_factory.mktemp("strange_base") / "base.mp4", n_frames=24,
                     cuts=(12,)).path


def one_frame(d: Path, base: Path) -> Path:
    return make_clip(d / "one.mp4", n_frames=1, cuts=()).path


def two_by_two(d: Path, base: Path) -> Path:
    return make_clip(d / "tiny.mp4", width=2, height=2, n_frames=8, cuts=(4,)).path


def odd_size(d: Path, base: Path) -> Path:
    return make_clip(d / "odd.mp4", width=321, height=241, n_frames=8, cuts=(4,),
                     pix_fmt="yuv444p").path


def ten_bit(d: Path, base: Path) -> Path:
    return make_clip(d / "ten.mp4", n_frames=8, cuts=(4,), pix_fmt="yuv420p10le").path


def rotated(d: Path, base: Path) -> Path:
    return rotate_with_ffmpeg(base, d / "rot90.mp4", 90)


def interlaced(d: Path, base: Path) -> Path:
    """H.264 coded as interlaced fields (top field first), as from a video camera."""
    out = d / "interlaced.mp4"
    run_ffmpeg("-i", str(base), "-c:v", "libx264", "-flags", "+ilme+ildct", "-top", "1",
               "-c:a", "copy", str(out))
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).interlaced_frame
    return out


def anamorphic(d: Path, base: Path) -> Path:
    return make_clip(d / "sar43.mp4", n_frames=8, cuts=(4,), sar=Fraction(4, 3)).path


def vfr(d: Path, base: Path) -> Path:
    return make_clip(d / "vfr.mp4", n_frames=32, cuts=(12,), vfr=True).path


def vfr_mkv(d: Path, base: Path) -> Path:
    return make_clip(d / "vfr.mkv", n_frames=32, cuts=(12,), vfr=True).path


def vfr_mkv_long_last(d: Path, base: Path) -> Path:
    """VFR Matroska whose last frame comes three frame periods after the one before it."""
    clip = make_clip(d / "vfr-last.mkv", n_frames=30, cuts=(12,), vfr=True)
    assert clip.pts[-1] - clip.pts[-2] == 3 * clip.rate.denominator
    return clip.path


def silent(d: Path, base: Path) -> Path:
    return make_clip(d / "silent.mp4", n_frames=8, cuts=(4,), audio=False).path


def two_audio(d: Path, base: Path) -> Path:
    out = d / "two-audio.mp4"
    run_ffmpeg("-i", str(base), "-map", "0:v", "-map", "0:a", "-map", "0:a", "-c", "copy", str(out))
    return out


def subtitled(d: Path, base: Path) -> Path:
    """Two SRT cues (0-0.5 s, 0.6-1.2 s) on a 2 s film, in Matroska."""
    clip = make_clip(d / "for-subs.mp4", n_frames=48, cuts=(16, 32))
    return add_subtitles(clip.path, d / "subtitled.mkv")


def subtitles_outlast(d: Path, base: Path) -> Path:
    """The same cues on the 1 s base clip: the last cue ends 0.2 s after the last frame."""
    return add_subtitles(base, d / "subs-outlast.mkv")


def mpeg2_ts(d: Path, base: Path) -> Path:
    out = d / "mpeg2.ts"
    run_ffmpeg("-i", str(base), "-c:v", "mpeg2video", "-q:v", "3", "-c:a", "mp2", str(out))
    return out


def mjpeg_avi(d: Path, base: Path) -> Path:
    out = d / "mjpeg.avi"
    run_ffmpeg("-i", str(base), "-c:v", "mjpeg", "-q:v", "3", "-c:a", "pcm_s16le", str(out))
    return out


def prores_mov(d: Path, base: Path) -> Path:
    if not has_encoder("prores_ks"):
        pytest.skip("this PyAV has no prores_ks encoder")
    return make_clip(d / "prores.mov", n_frames=8, cuts=(4,), codec="prores_ks",
                     pix_fmt="yuv422p10le", audio_codec="pcm_s16le").path


def vp9_webm(d: Path, base: Path) -> Path:
    if not (has_encoder("libvpx-vp9") and has_encoder("libopus")):
        pytest.skip("this PyAV has no libvpx-vp9/libopus encoder")
    return make_clip(d / "vp9.webm", n_frames=8, cuts=(4,), codec="libvpx-vp9",
                     audio_codec="libopus").path


def av1_mkv(d: Path, base: Path) -> Path:
    if not (has_decoder("libdav1d") or has_decoder("libaom-av1")):
        pytest.skip("this PyAV cannot decode AV1 in software (no libdav1d/libaom)")
    for name, options in (("libsvtav1", {"preset": "12"}), ("libaom-av1", {"cpu-used": "8"}),
                          ("librav1e", {"speed": "10"})):
        if has_encoder(name):
            return make_clip(d / "av1.mkv", n_frames=8, cuts=(4,), codec=name,
                             options=options).path
    pytest.skip("this PyAV has no AV1 encoder (libsvtav1, libaom-av1, librav1e)")


@dataclass
class Row:
    build: Callable[[Path, Path], Path]
    pix_fmt: str = "yuv420p"  # of the output
    output: str | None = ".mp4"  # -o suffix; None: the default output
    default_name: str | None = None  # the default output's name, when ``output`` is None
    subtitles: list[str] | None = None  # the output's subtitle codecs; None: the source's
    warning: str | None = None  # a warning the run must give (any other: a failure)
    marks: tuple = ()



ROWS: dict[str, Row] = {
    "one-frame": Row(one_frame),
    "2x2": Row(two_by_two),
    "odd-321x241": Row(odd_size, pix_fmt="yuv444p", warning="frame size 321x241 is odd"),
    "10-bit": Row(ten_bit, pix_fmt="yuv420p10le"),
    "rotated-90": Row(rotated),
    "interlaced": Row(interlaced),
    "anamorphic-4:3": Row(anamorphic),
    "vfr": Row(vfr),
    "vfr-mkv": Row(vfr_mkv),
    "vfr-mkv-long-last-frame": Row(vfr_mkv_long_last, output=".mkv"),
    "no-audio": Row(silent),
    "two-audio-tracks": Row(two_audio),
    "subtitles-default-output": Row(subtitled, output=None, default_name="subtitled.colour.mkv"),
    "subtitles-to-mp4": Row(subtitled, subtitles=["mov_text"], warning="converted to mov_text"),
    "subtitles-outlast-picture": Row(subtitles_outlast, output=".mkv"),
    "mpeg2-ts": Row(mpeg2_ts),
    "mjpeg-avi": Row(mjpeg_avi),
    "prores-mov": Row(prores_mov, pix_fmt="yuv420p10le"),
    "vp9-webm": Row(vp9_webm),
    "av1-mkv": Row(av1_mkv),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=r.marks) for n, r in ROWS.items()])
def test_strange_source_works(
    name: str, base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    row = ROWS[name]
    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    src = row.build(src_dir, base)
    before = facts(src)
    if row.output is None:
        args: tuple = ()
        out = src_dir / str(row.default_name)
    else:
        out = out_dir / f"coloured{row.output}"
        args = ("-o", out)
    caplog.set_level(logging.WARNING)
    assert main([str(src), *map(str, args), *TINY]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not damage_warnings(caplog), warnings
    if row.warning:
        assert len(warnings) == 1 and row.warning in warnings[0], warnings
    else:
        assert not warnings, warnings

    after = facts(out)
    assert after.frames == before.frames
    assert np.allclose(after.times, before.times, rtol=0, atol=1.5e-3), "frame times changed"
    assert abs(after.duration - before.duration) <= before.period + 2e-3
    assert (after.width, after.height) == (before.width, before.height)
    assert after.pix_fmt == row.pix_fmt
    assert after.sar == before.sar
    assert after.rotation == before.rotation
    assert after.audio == before.audio  # every stream, codec and packet copied
    assert after.subtitles == (before.subtitles if row.subtitles is None else row.subtitles)
    # Nothing else left: no job folder, no temporary file.
    folder = out.parent
    expected = {out.name} | ({p.name for p in src_dir.iterdir()} if folder == src_dir else set())
    assert {p.name for p in folder.iterdir()} == expected


def test_mov_text_warning_names_the_output(
    base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = subtitled(tmp_path, base)
    out = tmp_path / "film.mp4"
    caplog.set_level(logging.WARNING)
    assert main([str(src), "-o", str(out), *TINY]) == 0
    [warning] = [r.getMessage() for r in caplog.records if "mov_text" in r.getMessage()]
    assert "filmcolor-join" not in warning and out.name in warning, warning


def test_rows_cover_what_they_say(base: Path, tmp_path: Path) -> None:
    """Guard for the builders: each strange source is what its row claims."""
    f = facts(one_frame(tmp_path, base))
    assert f.frames == 1
    assert (facts(two_by_two(tmp_path, base)).width, facts(two_by_two(tmp_path, base)).height) \
        == (2, 2)
    assert facts(odd_size(tmp_path, base)).pix_fmt == "yuv444p"
    assert facts(ten_bit(tmp_path, base)).pix_fmt == "yuv420p10le"
    assert facts(rotated(tmp_path, base)).rotation == 90
    assert facts(anamorphic(tmp_path, base)).sar == Fraction(4, 3)
    steps = np.diff(facts(vfr(tmp_path, base)).times)
    assert steps.max() > 2.5 * steps.min()
    assert facts(silent(tmp_path, base)).audio == []
    assert len(facts(two_audio(tmp_path, base)).audio) == 2
    assert facts(subtitled(tmp_path, base)).subtitles == ["srt"]  # SubRip (PyAV's name)


# -- output containers -----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ACCEPTED)
def test_each_output_container(suffix: str, base: Path, tmp_path: Path) -> None:
    out = tmp_path / f"coloured{suffix}"
    assert main([str(base), "-o", str(out), *TINY]) == 0
    before, after = facts(base), facts(out)
    assert after.frames == before.frames
    assert np.allclose(after.times, before.times, rtol=0, atol=1.5e-3)
    assert abs(after.duration - before.duration) <= before.period + 2e-3
    assert after.audio == before.audio
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("suffix", [".avi", ".webm"])
def test_refused_output_container(
    suffix: str, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before any work: one line naming the containers that work, exit 5, nothing
    written, no job folder; in process, neither the planning pass nor a model is reached."""
    out = tmp_path / f"coloured{suffix}"
    line = one_error_line(cli(base, "-o", out, *TINY), 5)
    assert out.name in line
    for ok in ACCEPTED:
        assert ok in line, line
    assert list(tmp_path.iterdir()) == []

    import filmcolor.jobs.plan as plan_mod
    import filmcolor.pipeline as pipeline_mod

    def no_work(*a, **k):
        raise AssertionError("work started for a refused output")

    monkeypatch.setattr(plan_mod, "planning_pass", no_work)
    monkeypatch.setattr(pipeline_mod, "build_colorizer", no_work)
    monkeypatch.setattr("filmcolor.api.build_colorizer", no_work)
    assert main([str(base), "-o", str(out), *TINY]) == 5
    assert list(tmp_path.iterdir()) == []


# -- very large stills -----------------------------------------------------------------------------
@pytest.mark.slow
def test_still_over_400_mpx_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "huge.png"
    assert cv2.imwrite(str(src), np.zeros((20000, 21000), np.uint8))  # 420 Mpx, ~0.5 MB
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    line = one_error_line(cli(src, "-o", out_dir / "huge.colour.png", *TINY), 2)
    assert "21000x20000" in line and "at most 400 Mpx" in line, line
    assert list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_108_mpx_still_is_coloured(tmp_path: Path) -> None:
    """12000x9000 grey PNG: about a minute and 3 GB of memory here (in a subprocess, so the
    memory goes back when it ends)."""
    src = tmp_path / "big.png"
    assert cv2.imwrite(str(src), np.full((9000, 12000), 128, np.uint8))
    out = tmp_path / "big.colour.png"
    r = cli(src, "-o", out, *TINY)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape == (9000, 12000, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.colour.png", "big.png"]
