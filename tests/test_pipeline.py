"""End to end through the CLI with the test-only ``tiny`` model: what a user gets on disk.

Each test decodes the *output* and checks frame counts, timestamps, audio packets, luminance and
chroma, or an error path's exit code, message and the absence of any partial output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from filmcolor.__main__ import main
from filmcolor.io.probe import probe
from tests.media import Clip

TINY = ["--model", "tiny", "-q"]


def run_cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


def video_planes(path: Path) -> tuple[list[Fraction], list[np.ndarray], list[np.ndarray]]:
    """(frame times, Y planes, U planes) of a file's first video stream."""
    times, ys, us = [], [], []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        for f in c.decode(st):
            times.append(f.pts * st.time_base)
            a = f.to_ndarray(format="yuv444p")
            ys.append(a[0].astype(np.float64))
            us.append(a[1].astype(np.float64))
    return times, ys, us


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def leftovers(folder: Path) -> list[str]:
    """Temp files and job folders a failed run must not leave beside its output."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") or p.name.endswith(".filmcolor-job"))


def one_error_line(capsys) -> str:
    """The run's stderr, asserted to be exactly one line; returned lower-cased."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0].lower()


@pytest.fixture(scope="module")
def ntsc_out(clip_ntsc: Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "ntsc.colour.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 0
    return out


def test_frames_timestamps_audio_luma(clip_ntsc: Clip, ntsc_out: Path) -> None:
    src_t, src_y, _ = video_planes(clip_ntsc.path)
    out_t, out_y, out_u = video_planes(ntsc_out)
    assert len(out_t) == clip_ntsc.n_frames == len(src_t)
    assert out_t == src_t  # every timestamp, exactly (24000/1001)
    # Duration within one frame of the input's.
    assert abs(probe(ntsc_out).duration - probe(clip_ntsc.path).duration) <= 1001 / 24000
    # Audio copied, not re-encoded: byte-identical packets.
    src_audio = audio_packets(clip_ntsc.path)
    assert src_audio and audio_packets(ntsc_out) == src_audio
    # The film's own luminance is kept.
    assert psnr(np.stack(out_y), np.stack(src_y)) >= 40.0
    # And it is coloured: chroma moved away from neutral.
    assert float(np.mean([np.abs(u - 128).mean() for u in out_u])) > 2.0


@pytest.mark.slow
def test_default_output_name_and_no_overwrite(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    src = tmp_path / "film.mp4"
    src.write_bytes(clip_ntsc.path.read_bytes())
    assert run_cli(src, *TINY) == 0
    out = tmp_path / "film.colour.mp4"
    assert out.is_file()
    before = out.stat().st_mtime_ns, out.read_bytes()
    assert run_cli(src, *TINY) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"filmcolor: error: output exists: {out} (use --overwrite to replace it)"]
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before
    assert run_cli(src, *TINY, "--overwrite") == 0


def test_vfr_timestamps_kept(clip_vfr: Clip, tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    assert run_cli(clip_vfr.path, "-o", out, *TINY) == 0
    assert video_planes(out)[0] == video_planes(clip_vfr.path)[0]


def test_odd_size_and_rotation(clip_odd: Clip, clip_rotated: Clip, tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    assert run_cli(clip_odd.path, "-o", out, *TINY) == 0
    info = probe(out)
    assert (info.width, info.height) == (322, 179)
    assert info.sample_aspect_ratio == probe(clip_odd.path).sample_aspect_ratio
    out = tmp_path / "rot.mp4"
    assert run_cli(clip_rotated.path, "-o", out, *TINY) == 0
    assert probe(out).rotation == probe(clip_rotated.path).rotation == 90


@pytest.mark.slow
def test_subtitles_kept(clip_subtitled: Clip, tmp_path: Path) -> None:
    out = tmp_path / "sub.mkv"
    assert run_cli(clip_subtitled.path, "-o", out, *TINY) == 0
    assert [s.codec for s in probe(out).subtitle_streams] == ["srt"]
    # Default output: MP4 would have to convert the SRT stream, so the film comes out as MKV
    # with its subtitles as they were.
    src = tmp_path / "film.mkv"
    src.write_bytes(clip_subtitled.path.read_bytes())
    assert run_cli(src, *TINY) == 0
    assert not (tmp_path / "film.colour.mp4").exists()
    assert [s.codec for s in probe(tmp_path / "film.colour.mkv").subtitle_streams] == ["srt"]


@pytest.mark.slow
def test_smoothing_reduces_chroma_flicker(clip_ntsc: Clip, tmp_path: Path) -> None:
    """Frame-to-frame chroma change inside shots drops with smoothing; cuts stay sharp."""
    res = {}
    for name, opts in (("raw", ["--no-smoothing"]), ("smooth", ["--smoothing", "1"])):
        out = tmp_path / f"{name}.mp4"
        assert run_cli(clip_ntsc.path, "-o", out, *TINY, *opts) == 0
        _, _, us = video_planes(out)
        d = [np.abs(us[i] - us[i - 1]).mean() for i in range(1, len(us))]
        inside = [x for i, x in enumerate(d, start=1) if i not in clip_ntsc.cuts]
        at_cut = [d[c - 1] for c in clip_ntsc.cuts]
        res[name] = (np.mean(inside), np.mean(at_cut))
    assert res["smooth"][0] < 0.8 * res["raw"][0]
    # A cut is not smeared: the change across it stays at least 80 % of the unsmoothed change.
    assert res["smooth"][1] >= 0.8 * res["raw"][1]


def test_still_image_keeps_luminance(image_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "still.png"
    assert run_cli(image_png, "-o", out, *TINY) == 0
    src = cv2.imread(str(image_png), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    rgb = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert rgb.shape[:2] == src.shape
    # Lab L in 0..100 (float input to OpenCV); only gamut clipping of strong colours moves it.
    lab_l = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)[..., 0]
    grey = np.repeat(src[..., None], 3, axis=2).astype(np.float32) / 255
    grey_l = cv2.cvtColor(grey, cv2.COLOR_BGR2LAB)[..., 0]
    assert np.abs(lab_l - grey_l).mean() < 1.5
    assert np.ptp(rgb.reshape(-1, 3).astype(int), axis=1).mean() > 2  # not grey any more


def test_folder_of_images(image_png: Path, image_png16: Path, tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for p in (image_png, image_png16):
        (src / p.name).write_bytes(p.read_bytes())
    assert run_cli(src, *TINY) == 0
    out = tmp_path / "photos.colour"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())


def test_folder_with_a_damaged_image(image_png: Path, tmp_path: Path, capsys) -> None:
    """One unreadable scan does not stop the folder: the rest are coloured, the damaged one is
    named in one line, and the exit code says not everything was done."""
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.png", "c.png"):
        (src / name).write_bytes(image_png.read_bytes())
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # header, then nothing
    assert run_cli(src, "--model", "tiny") == 2
    err = capsys.readouterr().err
    assert "1 image(s) could not be read and were skipped: b.png" in err
    out = tmp_path / "photos.colour"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    grey = cv2.imread(str(image_png), cv2.IMREAD_GRAYSCALE)
    grey_l = cv2.cvtColor(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR).astype(np.float32) / 255,
                          cv2.COLOR_BGR2LAB)[..., 0]
    for name in ("a.png", "c.png"):
        bgr = cv2.imread(str(out / name))
        lab_l = cv2.cvtColor(bgr.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)[..., 0]
        assert bgr.shape[:2] == grey.shape and np.abs(lab_l - grey_l).mean() < 1.5


def test_folder_with_wrong_weights_creates_nothing(image_png: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "a.png").write_bytes(image_png.read_bytes())
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"\x00" * 100)
    assert run_cli(src, "--model", "tiny", "--weights", bad, "-q") == 4
    assert "not a pytorch weights file" in one_error_line(capsys)
    assert not (tmp_path / "photos.colour").exists()


# -- errors: one line, non-zero exit, nothing at the output path ----------------------------------
@pytest.mark.parametrize(
    "make, code, message",
    [
        (lambda d: d / "missing.mp4", 2, "no such file"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", 2, "not a video or image"),
    ],
)
def test_bad_input(make, code: int, message: str, tmp_path: Path, capsys) -> None:
    src = make(tmp_path)
    assert run_cli(src, *TINY) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0].lower()
    assert not list(tmp_path.glob("*.colour.*"))


def test_audio_only_has_no_video_stream(tmp_path: Path, capsys) -> None:
    from tests.media import make_audio_only

    src = make_audio_only(tmp_path / "sound.wav")
    assert run_cli(src, *TINY) == 2
    assert "no video stream" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sound.wav"]


def test_wrong_weights(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, "--model", "tiny", "--weights", bad, "-q") == 4
    assert "not a PyTorch weights file" in capsys.readouterr().err
    assert not out.exists() and leftovers(tmp_path) == []


def test_unwritable_output(clip_ntsc: Clip, tmp_path: Path, capsys, monkeypatch) -> None:
    assert run_cli(clip_ntsc.path, "-o", tmp_path / "nope" / "o.mp4", *TINY) == 5
    assert "does not exist" in one_error_line(capsys)
    # A folder that exists but refuses new files (read-only mount, permissions): the scratch
    # file filmcolor tries to create there fails, before any decoding or colouring.
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert run_cli(clip_ntsc.path, "-o", tmp_path / "o.mp4", *TINY) == 5
    assert "cannot write to" in one_error_line(capsys)
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []


def test_missing_weights_file(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, "--model", "tiny", "--weights", tmp_path / "no.pt", "-q") == 4
    assert "no.pt" in one_error_line(capsys)
    assert not out.exists() and leftovers(tmp_path) == []


def test_undecodable_stream(clip_ntsc: Clip, tmp_path: Path, capsys, caplog) -> None:
    """A stream broken part-way (#17): coloured to the end by default, the lost frames
    concealed and named in one warning, frame count and times kept; with --strict one line,
    exit 3, nothing at or beside the output."""
    data = bytearray(clip_ntsc.path.read_bytes())
    n = len(data)
    data[n // 4 : 3 * n // 4] = bytes(3 * n // 4 - n // 4)  # zero the middle of the media data
    src = tmp_path / "broken.mp4"
    src.write_bytes(bytes(data))
    strict = tmp_path / "strict.mp4"
    assert run_cli(src, "-o", strict, *TINY, "--strict") == 3
    line = one_error_line(capsys)
    assert "cannot be decoded" in line and "--strict" in line
    assert not strict.exists() and leftovers(tmp_path) == []

    out = tmp_path / "o.mp4"
    assert run_cli(src, "-o", out, *TINY) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    damaged = [w for w in warnings if "is damaged" in w]
    assert len(damaged) == 1 and "cannot be decoded (frames " in damaged[0]
    times, _, _ = video_planes(out)
    assert times == video_planes(clip_ntsc.path)[0]  # every frame, at its own time
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name, message", [("o.xyz", "unknown video container"),
                                           ("o.txt", "unknown video container")])
def test_unknown_output_container_refused_before_colouring(
    clip_ntsc: Clip, tmp_path: Path, capsys, monkeypatch, name: str, message: str
) -> None:
    from filmcolor import pipeline

    def no_model(cfg):
        raise AssertionError("the model was built before the output was checked")

    monkeypatch.setattr(pipeline, "build_colorizer", no_model)
    assert run_cli(clip_ntsc.path, "-o", tmp_path / name, *TINY) == 5
    assert message in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unknown_image_format_refused(image_png: Path, tmp_path: Path, capsys) -> None:
    assert run_cli(image_png, "-o", tmp_path / "o.xyz", *TINY) == 5
    assert "unknown image format" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_audio_mp4_cannot_hold(tmp_path: Path, capsys) -> None:
    """8-bit PCM sound (old capture cards write it) has no MP4 form: by default the film comes out
    as MKV with its sound copied; an explicit .mp4 is refused at once, before any colouring."""
    from tests.media import make_clip

    clip = make_clip(tmp_path / "pcm.mkv", n_frames=12, audio_codec="pcm_u8")
    assert run_cli(clip.path, "-o", tmp_path / "o.mp4", *TINY) == 5
    line = one_error_line(capsys)
    assert "audio stream" in line and "pcm_u8" in line and ".mkv" in line
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []
    assert run_cli(clip.path, *TINY) == 0
    out = tmp_path / "pcm.colour.mkv"
    assert not (tmp_path / "pcm.colour.mp4").exists()
    assert audio_packets(out) == audio_packets(clip.path) and len(audio_packets(out)) > 0
    times, _, _ = video_planes(out)
    assert len(times) == 12


def test_failure_mid_run_leaves_nothing(clip_ntsc: Clip, tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C while encoding leaves no file at the output path and no temp files; only the
    resumable job (its manifest) stays."""
    from filmcolor.infer import merge

    real = merge.chroma_planes
    calls = {"n": 0}

    def failing(frame, size=None, upsample="bilateral"):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return real(frame, size, upsample)

    monkeypatch.setattr(merge, "chroma_planes", failing)
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 130
    assert not out.exists() and leftovers(tmp_path) == ["o.mp4.filmcolor-job"]
    assert (tmp_path / "o.mp4.filmcolor-job" / "manifest.json").is_file()


def test_no_traceback_without_debug(tmp_path: Path) -> None:
    env = {**os.environ, "FILMCOLOR_DEBUG": "0"}
    r = subprocess.run([sys.executable, "-m", "filmcolor", str(tmp_path / "x.mp4")],
                       check=False, capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"filmcolor: error: no such file: '{tmp_path / 'x.mp4'}'"]
    r = subprocess.run([sys.executable, "-m", "filmcolor", "--debug", str(tmp_path / "x.mp4")],
                       check=False, capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Traceback" in r.stderr
