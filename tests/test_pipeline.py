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
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


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


def test_subtitles_kept(clip_subtitled: Clip, tmp_path: Path) -> None:
    out = tmp_path / "sub.mkv"
    assert run_cli(clip_subtitled.path, "-o", out, *TINY) == 0
    assert len(probe(out).subtitle_streams) == 1


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
    assert "no video stream" in capsys.readouterr().err.lower()


def test_wrong_weights(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, "--model", "tiny", "--weights", bad, "-q") == 4
    assert "not a PyTorch weights file" in capsys.readouterr().err
    assert not out.exists() and leftovers(tmp_path) == []


def test_unwritable_output(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    assert run_cli(clip_ntsc.path, "-o", tmp_path / "nope" / "o.mp4", *TINY) == 5
    assert "does not exist" in capsys.readouterr().err


def test_failure_mid_run_leaves_nothing(clip_ntsc: Clip, tmp_path: Path, monkeypatch) -> None:
    """An error while encoding (or Ctrl-C) leaves no file at the output path and no temp files."""
    import filmcolor.infer.merge as merge

    real = merge.chroma_planes
    calls = {"n": 0}

    def failing(frame, size=None):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return real(frame, size)

    monkeypatch.setattr(merge, "chroma_planes", failing)
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 130
    assert not out.exists() and leftovers(tmp_path) == []


def test_no_traceback_without_debug(tmp_path: Path) -> None:
    env = {**os.environ, "FILMCOLOR_DEBUG": "0"}
    r = subprocess.run([sys.executable, "-m", "filmcolor", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"filmcolor: error: no such file: '{tmp_path / 'x.mp4'}'"]
    r = subprocess.run([sys.executable, "-m", "filmcolor", "--debug", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Traceback" in r.stderr
