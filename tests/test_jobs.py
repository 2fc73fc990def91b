"""Resumable chunked jobs (#4): the plan, bit-exact chunks, kill-and-resume, refusals, status.

The SIGKILL tests use ``--codec ffv1`` (lossless), so they check the pipeline's determinism
independently of any encoder; ``test_h264_resume_is_identical`` checks the default libx264 too
(which needs ``filmcolor.io.encode.repeatable_heap``). The coloured planes themselves are compared before
encoding in ``test_chunks_equal_whole_run``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

import filmcolor.jobs.chunk as chunk_mod
import filmcolor.jobs.plan as plan_mod
from filmcolor.__main__ import main
from filmcolor.jobs import faults, folder
from filmcolor.jobs.manifest import JobManifest, job_lock
from tests.media import Clip, make_clip

TINY = ["--model", "tiny", "-q", "--chunk-frames", "12"]
EXACT = [*TINY, "--codec", "ffv1"]


def run_cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


def frames_and_times(path: Path) -> list[tuple[object, bytes]]:
    """(time, every plane's bytes) of each decoded video frame."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return [(f.pts * st.time_base, f.to_ndarray().tobytes()) for f in c.decode(st)]


def interrupt_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Raise KeyboardInterrupt (as Ctrl-C would) at a kill point, in this process."""

    def hook(name: str, n: int) -> None:
        if f"{name}:{n}" == point:
            raise KeyboardInterrupt

    monkeypatch.setattr(faults, "kill_point", hook)


@pytest.fixture(scope="module")
def reference(clip_ntsc: Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted job over ``clip_ntsc`` (48 frames, cuts at 16 and 32) in FFV1."""
    out = tmp_path_factory.mktemp("ref") / "ref.mkv"
    assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 0
    assert not folder.default_job_dir(out).exists()  # removed after success
    return out


def test_plan_chunks_start_on_cuts_with_context() -> None:
    chunks = plan_mod.plan_chunks(48, [0, 16, 32], chunk_frames=12, context=4, batch=8)
    assert [(c.start, c.end) for c in chunks] == [
        (0, 12), (12, 16), (16, 28), (28, 32), (32, 44), (44, 48)
    ]
    # Decode ranges: 4 frames of context on a side inside a shot, none on a side that is a cut
    # (nothing crosses a cut), rounded out to whole batches of 8.
    assert [(c.decode_start, c.decode_end) for c in chunks] == [
        (0, 16), (8, 16), (16, 32), (24, 32), (32, 48), (40, 48)
    ]
    # The colour hold looks further back than the window looks ahead: (before, after).
    lopsided = plan_mod.plan_chunks(48, [0, 16, 32], chunk_frames=12, context=(10, 2), batch=1)
    assert [(c.decode_start, c.decode_end) for c in lopsided] == [
        (0, 14), (2, 16), (16, 30), (18, 32), (32, 46), (34, 48)
    ]
    # Whole shots are packed together while they fit.
    packed = plan_mod.plan_chunks(100, [0, 10, 20, 70], chunk_frames=30, context=0, batch=1)
    assert [(c.start, c.end) for c in packed] == [(0, 20), (20, 50), (50, 70), (70, 100)]


@pytest.mark.slow
def test_chunks_equal_whole_run(clip_ntsc: Clip) -> None:
    """The coloured planes of a chunked run equal those of one pass, bit for bit."""
    from filmcolor.config import RunConfig
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import build_colorizer, video_stages

    cfg = RunConfig(input=clip_ntsc.path, model="tiny", batch_size=5)
    colorizer = build_colorizer(cfg)
    whole = list(video_stages(decode(clip_ntsc.path), cfg, colorizer))
    pts, cuts = plan_mod.planning_pass(clip_ntsc.path, cfg)
    assert cuts == [0, *clip_ntsc.cuts]
    plan = plan_mod.plan_chunks(len(pts), cuts, 7, plan_mod.temporal_context(cfg), cfg.batch_size)
    parts = []
    for c in plan:
        c.seek_pts = pts[c.decode_start]
        parts += list(chunk_mod.chunk_frames(clip_ntsc.path, c, cuts, cfg, colorizer))
    assert [f.index for f in parts] == list(range(clip_ntsc.n_frames))
    for a, b in zip(whole, parts, strict=True):
        assert a.pts == b.pts and a.scene_start == b.scene_start
        assert np.array_equal(a.extra["cbcr"], b.extra["cbcr"])


@pytest.mark.slow
def test_chunks_equal_whole_run_in_a_long_shot(media_dir: Path) -> None:
    """A shot longer than the colour hold's restart period, split into chunks that start inside
    it (across both recursions' restarts): still bit-identical to one pass (#13)."""
    from filmcolor.config import RunConfig
    from filmcolor.io.decode import decode
    from filmcolor.pipeline import build_colorizer, video_stages
    from filmcolor.temporal.hold import DEFAULT_PERIOD

    clip = make_clip(media_dir / "long_shot.mp4", n_frames=130, cuts=(110,), audio=False)
    cfg = RunConfig(input=clip.path, model="tiny", batch_size=4)
    colorizer = build_colorizer(cfg)
    # The cut list is given (as a planning pass stores it): one 110-frame shot, then another.
    cuts = [0, 110]
    whole = list(video_stages(decode(clip.path), cfg, colorizer, cuts=cuts))
    pts = [f.pts for f in decode(clip.path)]
    before, after = plan_mod.temporal_context(cfg)
    assert before > DEFAULT_PERIOD and after == 4
    plan = plan_mod.plan_chunks(len(pts), cuts, 30, (before, after), cfg.batch_size)
    assert [c.start for c in plan] == [0, 30, 60, 90, 110]
    parts = []
    for c in plan:
        c.seek_pts = pts[c.decode_start]
        parts += list(chunk_mod.chunk_frames(clip.path, c, cuts, cfg, colorizer))
    assert [f.index for f in parts] == list(range(130))
    for a, b in zip(whole, parts, strict=True):
        assert np.array_equal(a.extra["cbcr"], b.extra["cbcr"]), a.index
    # The look-back matters: the same chunks with only the window's context differ somewhere.
    short = plan_mod.plan_chunks(len(pts), cuts, 30, (after, after), cfg.batch_size)
    frames = []
    for c in short:
        c.seek_pts = pts[c.decode_start]
        frames += list(chunk_mod.chunk_frames(clip.path, c, cuts, cfg, colorizer))
    assert any(not np.array_equal(a.extra["cbcr"], b.extra["cbcr"]) for a, b in zip(whole, frames))


@pytest.mark.parametrize("point", ["planning:20", "chunk:18", "done:2", "join:30"])
@pytest.mark.slow
def test_sigkill_and_resume_is_identical(
    point: str, clip_ntsc: Clip, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    cmd = [sys.executable, "-m", "filmcolor", str(clip_ntsc.path), "-o", str(out), *EXACT]
    env = {**os.environ, faults.KILL_ENV: point}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not out.exists() and (job / "manifest.json").is_file()
    if point.startswith("planning"):
        assert not JobManifest.load(job).planned
    if point == "done:2":
        assert JobManifest.load(job).chunks_done == 3
    # Resume both ways: the same command again, and `filmcolor resume`.
    if point in ("planning:20", "done:2"):
        assert run_cli(clip_ntsc.path, "-o", out, *EXACT) == 0
    else:
        assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)
    assert not job.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_prints_resume(
    clip_ntsc: Clip, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "film.mkv"
    job = folder.default_job_dir(out)
    cmd = [sys.executable, "-m", "filmcolor", str(clip_ntsc.path), "-o", str(out), *EXACT]
    env = {**os.environ, faults.KILL_ENV: "chunk:15/TERM", "FILMCOLOR_DEBUG": "0"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 130
    assert r.stderr.strip().splitlines() == [
        f"filmcolor: interrupted; resume with: filmcolor resume {job}"
    ]
    assert JobManifest.load(job).chunks_done == 1
    assert not list(job.glob("*.tmp"))  # the chunk in progress was not left half-written
    assert run_cli("resume", job, "-q") == 0
    assert frames_and_times(out) == frames_and_times(reference)


@pytest.mark.slow
def test_interrupt_status_settings_change_and_restart(
    clip_ntsc: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "film.mp4"
    job = folder.default_job_dir(out)
    interrupt_at(monkeypatch, "done:1")
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"filmcolor: interrupted; resume with: filmcolor resume {job}"]
    monkeypatch.undo()

    assert run_cli("status", job) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "chunks: 2/6 done" in lines and "frames: 16/48 (33.3 %)" in lines
    assert any(ln.startswith("time left: about ") for ln in lines)
    assert lines[-1] == f"state: stopped; resume with: filmcolor resume {job}"

    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--smoothing", "1") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smoothing 0.5 -> 1.0" in err[0] and "--restart" in err[0]
    assert JobManifest.load(job).chunks_done == 2  # nothing was touched

    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--vividness", "1.5") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vividness default -> 1.5" in err[0]

    # The temporal method and the upsampling change pixels too (#13).
    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--temporal", "window") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "temporal 'flow' -> 'window'" in err[0]
    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--upsample", "bilinear") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "upsample 'bilateral' -> 'bilinear'" in err[0]
    assert JobManifest.load(job).chunks_done == 2

    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--smoothing", "1", "--restart") == 0
    assert out.is_file() and not job.exists()


def test_changed_source_refused(clip_ntsc: Clip, tmp_path: Path, monkeypatch, capsys) -> None:
    src = tmp_path / "src.mp4"
    src.write_bytes(clip_ntsc.path.read_bytes())
    out = tmp_path / "o.mp4"
    interrupt_at(monkeypatch, "done:0")
    assert run_cli(src, "-o", out, *TINY) == 130
    monkeypatch.undo()
    with open(src, "ab") as f:
        f.write(b"\0" * 10)
    assert run_cli(src, "-o", out, *TINY) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("filmcolor: error: the source file changed (size)")


def test_second_process_refused_by_lock(clip_ntsc: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.mp4"
    job = folder.default_job_dir(out)
    job.mkdir()
    with job_lock(job):
        assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in use by another filmcolor process" in err[0]
    assert not out.exists()


def test_low_disk_space(clip_ntsc: Clip, tmp_path: Path, monkeypatch, capsys) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 1 << 20))
    out = tmp_path / "o.mp4"
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "low disk space: 1 MiB free" in err[0]


def test_vfr_job_keeps_timestamps(clip_vfr: Clip, tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    assert run_cli(clip_vfr.path, "-o", out, *TINY, "--keep-chunks") == 0
    with av.open(str(clip_vfr.path)) as c:
        src = [f.pts * c.streams.video[0].time_base for f in c.decode(video=0)]
    assert [t for t, _ in frames_and_times(out)] == src
    assert len(list(folder.default_job_dir(out).glob("chunk_*.mp4"))) >= 3  # kept


@pytest.mark.slow
def test_h264_resume_is_identical(clip_ntsc: Clip, tmp_path: Path, monkeypatch) -> None:
    """Default encoder: an interrupted and resumed job decodes to the uninterrupted run's frames."""
    ref = tmp_path / "ref.mp4"
    assert run_cli(clip_ntsc.path, "-o", ref, *TINY) == 0
    out = tmp_path / "resumed.mp4"
    interrupt_at(monkeypatch, "done:2")
    assert run_cli(clip_ntsc.path, "-o", out, *TINY) == 130
    monkeypatch.undo()
    assert run_cli("resume", folder.default_job_dir(out), "-q") == 0
    assert frames_and_times(out) == frames_and_times(ref)


@pytest.mark.slow
def test_resume_keeps_overwrite(clip_ntsc: Clip, tmp_path: Path, monkeypatch) -> None:
    """A job started with --overwrite over an old output can be resumed while that output exists."""
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    interrupt_at(monkeypatch, "done:0")
    assert run_cli(clip_ntsc.path, "-o", out, *TINY, "--overwrite") == 130
    monkeypatch.undo()
    assert out.read_bytes() == b"old"  # untouched until the new film is complete
    assert run_cli("resume", folder.default_job_dir(out), "-q") == 0
    assert len(frames_and_times(out)) == clip_ntsc.n_frames
